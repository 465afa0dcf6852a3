/** Light and dark themes: the system's preference (prefers-color-scheme) until the user picks one
 *  with the toggle; the choice is kept in localStorage and set as <html data-theme>. */
import { h } from "./dom";

const KEY = "chainchat.theme";
type Theme = "light" | "dark";

function stored(): Theme | null {
  try {
    const v = localStorage.getItem(KEY);
    return v === "light" || v === "dark" ? v : null;
  } catch {
    return null;
  }
}

export function currentTheme(): Theme {
  return stored() ?? (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

export function applyTheme(): void {
  const t = stored();
  if (t) document.documentElement.dataset.theme = t;
  else delete document.documentElement.dataset.theme;
}

/** A button that switches to the other theme (and remembers it). */
export function themeToggle(): HTMLButtonElement {
  const button = h("button", { type: "button", class: "small secondary theme-toggle" });
  const label = (): void => {
    const dark = currentTheme() === "dark";
    button.textContent = dark ? "Light theme" : "Dark theme";
    button.setAttribute("aria-label", dark ? "Switch to the light theme" : "Switch to the dark theme");
  };
  button.addEventListener("click", () => {
    const next: Theme = currentTheme() === "dark" ? "light" : "dark";
    try {
      localStorage.setItem(KEY, next);
    } catch {
      /* private mode: the choice lasts for this page only */
    }
    document.documentElement.dataset.theme = next;
    label();
  });
  label();
  return button;
}
