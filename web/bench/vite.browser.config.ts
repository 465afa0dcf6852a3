import { defineConfig } from "vite";

// One IIFE script for the Chromium envelope benchmark: `vite build --config bench/vite.browser.config.ts --outDir DIR`.
export default defineConfig({
  build: {
    lib: { entry: "bench/browser_entry.ts", name: "ChainChatBench", formats: ["iife"], fileName: () => "envelope-bench.js" },
    target: "es2022",
    emptyOutDir: true,
    minify: false,
  },
});
