/** A tiny DOM builder: h("button", { onclick, "aria-label": "…" }, "text", child). Text is
 *  always inserted as text nodes, never as HTML, so decrypted content cannot inject markup. */

type Child = Node | string | number | null | undefined | false | Child[];
type Props = Record<string, unknown>;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, props: Props | null = null, ...children: Child[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props ?? {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value as EventListener);
    } else if (key === "class") {
      el.className = String(value);
    } else if (key === "dataset") {
      Object.assign(el.dataset, value);
    } else if (key === "value" || key === "checked" || key === "disabled" || key === "hidden" || key === "selected") {
      (el as any)[key] = value;
    } else {
      el.setAttribute(key, value === true ? "" : String(value));
    }
  }
  append(el, children);
  return el;
}

export function append(parent: Node, children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.appendChild(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function clear(el: Element, ...children: Child[]): void {
  el.replaceChildren();
  append(el, children);
}

let idCounter = 0;
export function uid(prefix: string): string {
  idCounter += 1;
  return `${prefix}-${idCounter}`;
}

/** A labelled form field: <label for=id>text</label><input id=id …>. */
export function field(label: string, input: HTMLInputElement | HTMLTextAreaElement | HTMLSelectElement, hint?: string): HTMLElement {
  input.id ||= uid("f");
  return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint ? h("small", { class: "hint" }, hint) : null);
}

export function errorBox(): HTMLElement & { show(msg: string | null): void } {
  const box = h("p", { class: "error", role: "alert", hidden: true }) as unknown as HTMLElement & { show(msg: string | null): void };
  box.show = (msg) => {
    box.textContent = msg ?? "";
    box.hidden = !msg;
  };
  return box;
}

export function messageOf(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

export function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ["KiB", "MiB", "GiB"];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatTime(iso: string | null | undefined): string {
  if (!iso) return "";
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return "";
  const today = new Date();
  const sameDay = d.toDateString() === today.toDateString();
  return sameDay ? d.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : d.toLocaleString([], { dateStyle: "short", timeStyle: "short" });
}

/** Open a modal <dialog> with a title and body; returns it (closed and removed on close). */
export function modal(title: string, ...body: Child[]): HTMLDialogElement {
  const titleId = uid("dlg");
  const dialog = h(
    "dialog",
    { class: "modal", "aria-labelledby": titleId },
    h("header", null, h("h2", { id: titleId }, title), h("button", { class: "icon", type: "button", "aria-label": "Close", onclick: () => dialog.close() }, "×")),
    h("div", { class: "modal-body" }, ...body),
  );
  dialog.addEventListener("close", () => dialog.remove());
  document.body.appendChild(dialog);
  dialog.showModal();
  return dialog;
}
