import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import axios from "axios";

const image = readFileSync("photo.png").toString("base64");
const { data: body } = await axios.post(
  "https://studio.example.com/api/generate",
  { image, template: "Vintage", templateType: "styles" },
  { headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}`, "Idempotency-Key": randomUUID() } },
);
console.log(JSON.stringify(body, null, 2));
