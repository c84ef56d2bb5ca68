curl -sS "https://studio.example.com/api/jobs?limit=20&kind=generate" \
  -H "Authorization: Bearer $NANO_API_KEY"
