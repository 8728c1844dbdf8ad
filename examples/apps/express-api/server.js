"use strict";

const express = require("express");

const app = express();
const port = Number(process.env.PORT || 3000);

app.use(express.json());

app.get("/health", (req, res) => {
  res.json({ status: "ok" });
});

app.get("/api/items", (req, res) => {
  res.json([{ id: 1, name: "first" }]);
});

app.listen(port, () => {
  console.log(`express-api listening on port ${port}`);
});
