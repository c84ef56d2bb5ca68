curl -sS "https://studio.example.com/api/requests?status=4xx&limit=5" \
  -H "Authorization: Bearer $NANO_API_KEY"
