curl -sS https://studio.example.com/api/user/profile \
  -H "Authorization: Bearer $NANO_API_KEY"
