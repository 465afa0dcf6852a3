/** QR codes drawn as SVG in the page (the `qr` library computes the modules; nothing is fetched,
 *  so the TOTP secret never leaves the browser). Dark modules on white, with the quiet zone. */
import encodeQR from "qr";

const NS = "http://www.w3.org/2000/svg";
const QUIET = 4;

/** The SVG path of the dark modules, offset by the quiet zone; `size` includes the zone. */
export function qrPath(text: string): { size: number; d: string } {
  const modules = encodeQR(text, "raw", { ecc: "medium" });
  let d = "";
  modules.forEach((row, y) => row.forEach((dark, x) => dark && (d += `M${x + QUIET} ${y + QUIET}h1v1h-1z`)));
  return { size: modules.length + 2 * QUIET, d };
}

export function qrSvg(text: string, label: string): SVGSVGElement {
  const { size, d } = qrPath(text);
  const svg = document.createElementNS(NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${size} ${size}`);
  svg.setAttribute("class", "qr");
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", label);
  svg.setAttribute("shape-rendering", "crispEdges");
  const bg = document.createElementNS(NS, "rect");
  bg.setAttribute("width", String(size));
  bg.setAttribute("height", String(size));
  bg.setAttribute("fill", "#ffffff");
  const path = document.createElementNS(NS, "path");
  path.setAttribute("d", d);
  path.setAttribute("fill", "#000000");
  svg.append(bg, path);
  return svg;
}
