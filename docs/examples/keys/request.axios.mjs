import axios from "axios";

const { data: body } = await axios.post(
  "https://studio.example.com/api/keys",
  {
    name: `deploy bot ${new Date().toISOString()}`,
    preset: "generate",
    expires_in_days: 90,
    budget: { cap: 200, period: "day" },
  },
  { headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}` } },
);
console.log(JSON.stringify(body, null, 2));
