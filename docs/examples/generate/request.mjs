import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";

const image = readFileSync("photo.png").toString("base64");
const response = await fetch("https://studio.example.com/api/generate", {
  method: "POST",
  headers: {
    Authorization: `Bearer ${process.env.NANO_API_KEY}`,
    "Content-Type": "application/json",
    "Idempotency-Key": randomUUID(),
  },
  body: JSON.stringify({ image, template: "Vintage", templateType: "styles" }),
});
const body = await response.json();
if (!body.success) throw new Error(`${response.status} ${body.error.code}: ${body.error.message}`);
console.log(JSON.stringify(body, null, 2));
