IMG=$(base64 -w0 receipt.png)   # macOS: base64 -i receipt.png
curl -sS https://studio.example.com/api/ocr \
  -H "Authorization: Bearer $NANO_API_KEY" \
  -H "Content-Type: application/json" \
  -d "{\"image\": \"$IMG\", \"language\": \"auto\", \"outputFormat\": \"json\"}"
