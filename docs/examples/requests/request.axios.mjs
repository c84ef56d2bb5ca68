import axios from "axios";

const { data: body } = await axios.get("https://studio.example.com/api/requests", {
  params: { status: "4xx", limit: 5 },
  headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}` },
});
console.log(JSON.stringify(body, null, 2));
