import { readFileSync } from "node:fs";

const image = readFileSync("receipt.png").toString("base64");
const response = await fetch("https://studio.example.com/api/ocr", {
  method: "POST",
  headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}`, "Content-Type": "application/json" },
  body: JSON.stringify({ image, language: "auto", outputFormat: "json" }),
});
const body = await response.json();
if (!body.success) throw new Error(`${response.status} ${body.error.code}: ${body.error.message}`);
console.log(JSON.stringify(body, null, 2));
