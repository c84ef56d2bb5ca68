curl -sS https://studio.example.com/api/keys \
  -H "Authorization: Bearer $NANO_API_KEY" \
  -H "Content-Type: application/json" \
  -d "{\"name\": \"deploy bot $(date +%Y%m%d-%H%M%S)\", \"preset\": \"generate\", \"expires_in_days\": 90, \"budget\": {\"cap\": 200, \"period\": \"day\"}}"
