IMG=$(base64 -w0 photo.png)   # macOS: base64 -i photo.png
curl -sS https://studio.example.com/api/generate \
  -H "Authorization: Bearer $NANO_API_KEY" \
  -H "Content-Type: application/json" \
  -H "Idempotency-Key: $(uuidgen 2>/dev/null || date +%s%N)" \
  -d "{\"image\": \"$IMG\", \"template\": \"Vintage\", \"templateType\": \"styles\"}"
