const response = await fetch("https://studio.example.com/api/keys", {
  method: "POST",
  headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}`, "Content-Type": "application/json" },
  body: JSON.stringify({
    name: `deploy bot ${new Date().toISOString()}`,
    preset: "generate",
    expires_in_days: 90,
    budget: { cap: 200, period: "day" },
  }),
});
const body = await response.json();
if (!body.success) throw new Error(`${response.status} ${body.error.code}: ${body.error.message}`);
console.log(JSON.stringify(body, null, 2));
