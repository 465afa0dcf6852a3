import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import type { Plugin } from "vite";
import { defineConfig } from "vitest/config";

const require = createRequire(import.meta.url);

// GET /api/v1/docs loads Swagger UI from this build, never from a CDN (SPEC §11): the pinned
// npm package's bundle and stylesheet, and a start script that is a file too (the page's CSP
// allows no inline script), all under dist/docs/.
const DOCS_INIT = `window.addEventListener("load", () => {
  window.ui = SwaggerUIBundle({ url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true });
});
`;

function apiDocs(): Plugin {
  return {
    name: "chainchat-api-docs",
    apply: "build",
    generateBundle() {
      const dist = dirname(require.resolve("swagger-ui-dist/package.json"));
      for (const name of ["swagger-ui-bundle.js", "swagger-ui.css"]) {
        this.emitFile({ type: "asset", fileName: `docs/${name}`, source: readFileSync(join(dist, name)) });
      }
      this.emitFile({ type: "asset", fileName: "docs/init.js", source: DOCS_INIT });
    },
  };
}

// The gateway serves dist/ at "/" (SPA fallback for client routes); during `npm run dev` Vite
// proxies the API (and its WebSocket) to a gateway on 127.0.0.1:8000.
export default defineConfig({
  base: "/",
  plugins: [apiDocs()],
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
