import { defineConfig } from "vitest/config";

// The gateway serves dist/ at "/" (SPA fallback for client routes); during `npm run dev` Vite
// proxies the API (and its WebSocket) to a gateway on 127.0.0.1:8000.
export default defineConfig({
  base: "/",
  build: {
    outDir: "dist",
    emptyOutDir: true,
    target: "es2022",
    sourcemap: true,
    assetsDir: "assets",
  },
  server: {
    proxy: {
      "/api": { target: "http://127.0.0.1:8000", ws: true, changeOrigin: false },
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    environment: "node",
    testTimeout: 30000,
  },
});
