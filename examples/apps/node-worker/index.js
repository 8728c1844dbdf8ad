"use strict";

const { Pool } = require("pg");

const pool = new Pool({ connectionString: process.env.DATABASE_URL });
const intervalMs = Number(process.env.POLL_INTERVAL_MS || 5000);

async function drainOnce() {
  const { rows } = await pool.query(
    "DELETE FROM jobs WHERE id IN (SELECT id FROM jobs ORDER BY id LIMIT 10) RETURNING id"
  );
  for (const row of rows) {
    console.log(`processed job ${row.id}`);
  }
}

setInterval(() => {
  drainOnce().catch((err) => console.error("worker error:", err.message));
}, intervalMs);
