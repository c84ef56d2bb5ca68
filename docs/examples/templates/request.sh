curl -sS https://studio.example.com/api/templates \
  -H "Authorization: Bearer $NANO_API_KEY"
