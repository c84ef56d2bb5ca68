import { readFileSync } from "node:fs";
import axios from "axios";

const image = readFileSync("receipt.png").toString("base64");
const { data: body } = await axios.post(
  "https://studio.example.com/api/ocr",
  { image, language: "auto", outputFormat: "json" },
  { headers: { Authorization: `Bearer ${process.env.NANO_API_KEY}` } },
);
console.log(JSON.stringify(body, null, 2));
