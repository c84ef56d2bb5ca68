const params = new URLSearchParams({ status: "4xx", limit: "5" });
const response = await fetch(`https://studio.example.com/api/requests?${params}`, {
  headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}` },
});
const body = await response.json();
if (!body.success) throw new Error(`${response.status} ${body.error.code}: ${body.error.message}`);
console.log(JSON.stringify(body, null, 2));
