/**
 * The card of a file message: name and size, a download that decrypts in the browser (with
 * progress; the SHA-256 the sender sealed is checked), and an inline preview for small images.
 */
import type { FileInfo, Messenger } from "../../messenger";
import { errorBox, formatBytes, h, icon, messageOf } from "../dom";

// Images the browser shows from a blob: URL (no SVG: it could carry script in other contexts).
const PREVIEWABLE = /^image\/(png|jpeg|gif|webp|avif|bmp)$/;
const MAX_PREVIEW_BYTES = 10 * 1024 * 1024;

export function fileCard(messenger: Messenger, info: FileInfo): HTMLElement {
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": `Download progress of ${info.name}` });
  const status = h("small", { class: "file-status", "aria-live": "polite" });
  const err = errorBox();
  const preview = h("div", { class: "file-preview" });
  let decrypted: Promise<Blob> | null = null;
  // Downloaded and decrypted once, with progress; the download button and the preview share it.
  const load = (): Promise<Blob> => {
    decrypted ??= (async () => {
      progress.hidden = false;
      err.show(null);
      try {
        const blob = await messenger.fetchFile(info, (f) => {
          progress.value = f;
          status.textContent = `Downloading and decrypting… ${Math.round(f * 100)}%`;
        });
        status.textContent = `Decrypted in your browser, SHA-256 checked (${formatBytes(blob.size)}).`;
        return blob;
      } catch (ex) {
        decrypted = null;
        status.textContent = "";
        throw ex;
      } finally {
        progress.hidden = true;
      }
    })();
    return decrypted;
  };
  const save = async (): Promise<void> => {
    button.disabled = true;
    try {
      const url = URL.createObjectURL(await load());
      const a = h("a", { href: url, download: info.name, hidden: true });
      document.body.append(a);
      a.click();
      a.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
    } catch (ex) {
      err.show(messageOf(ex));
    } finally {
      button.disabled = false;
    }
  };
  const button = h("button", { type: "button", class: "small", "aria-label": `Download ${info.name}`, onclick: save }, "Download");
  if (PREVIEWABLE.test(info.mime ?? "") && Number(info.size) <= MAX_PREVIEW_BYTES) {
    load()
      .then((blob) => preview.replaceChildren(h("img", { src: URL.createObjectURL(blob), alt: info.name, class: "image-preview" })))
      .catch((ex) => err.show(messageOf(ex)));
  }
  return h(
    "div",
    { class: "file-card" },
    preview,
    h("span", { class: "file-icon" }, icon("file")),
    h("div", { class: "file-meta" }, h("strong", { class: "file-name" }, info.name), h("small", null, ` ${formatBytes(Number(info.size) || 0)} · end-to-end encrypted`)),
    button,
    progress,
    status,
    err,
  );
}
