curl -sS "https://studio.example.com/api/usage?group_by=endpoint" \
  -H "Authorization: Bearer $NANO_API_KEY"
