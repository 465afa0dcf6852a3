import { defineConfig } from "vitest/config";

// Only the benchmarks under bench/ (npm test runs test/ only).
export default defineConfig({ test: { include: ["bench/**/*.bench.ts"], environment: "node" } });
