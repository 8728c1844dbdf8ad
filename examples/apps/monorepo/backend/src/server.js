"use strict";

const express = require("express");

const app = express();

app.get("/api/ping", (req, res) => res.json({ pong: true }));

app.listen(Number(process.env.PORT || 4000));
