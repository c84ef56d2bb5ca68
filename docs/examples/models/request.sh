curl -sS https://studio.example.com/api/models \
  -H "Authorization: Bearer $NANO_API_KEY"
