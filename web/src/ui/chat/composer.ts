/**
 * The composer of the open conversation: the text box (Enter sends, Shift+Enter breaks the line),
 * typing notices, and a file attachment with its progress.
 */
import { errorBox, form, h, icon, messageOf, uid } from "../dom";

export interface ComposerActions {
  /** Send a text (the caller shows it at once and reports failures on the message itself). */
  sendText(text: string): void;
  /** Encrypt, upload and send a file; `progress` gets 0..1 and what is happening. */
  sendFile(file: File, progress: (fraction: number, phase: string) => void): Promise<void>;
  /** The user typed (the caller throttles the notices). */
  typing(): void;
}

export function composer(actions: ComposerActions): HTMLFormElement {
  const text = h("textarea", { id: uid("composer"), rows: 2, placeholder: "Write an encrypted message…", autocomplete: "off" });
  const fileInput = h("input", { type: "file", id: uid("attach"), class: "visually-hidden" });
  const progress = h("progress", { max: "1", value: "0", hidden: true, "aria-label": "Upload progress" });
  const progressLabel = h("span", { class: "progress-label", "aria-live": "polite" });
  const err = errorBox();
  const send = (): void => {
    const value = text.value;
    if (!value.trim()) return;
    err.show(null);
    text.value = "";
    text.focus();
    actions.sendText(value);
  };
  const composerForm = form(
    { class: "composer", "aria-label": "Send a message" },
    send,
    h("label", { for: text.id, class: "visually-hidden" }, "Message"),
    text,
    h("label", { for: fileInput.id, class: "attach button", title: "Attach a file (encrypted in your browser)" }, icon("clip"), h("span", { class: "attach-text" }, "Attach file")),
    fileInput,
    h("button", { type: "submit", class: "primary" }, "Send"),
    h("div", { class: "composer-status" }, progress, progressLabel, err),
  );
  text.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && !e.shiftKey) {
      e.preventDefault();
      composerForm.requestSubmit();
    }
  });
  text.addEventListener("input", () => {
    if (text.value) actions.typing();
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files?.[0];
    if (!file) return;
    progress.hidden = false;
    progress.value = 0;
    err.show(null);
    try {
      await actions.sendFile(file, (f, phase) => {
        progress.value = f;
        progressLabel.textContent = `${phase} ${file.name}… ${Math.round(f * 100)}%`;
      });
      progressLabel.textContent = `Sent ${file.name}.`;
    } catch (ex) {
      err.show(messageOf(ex));
      progressLabel.textContent = "";
    } finally {
      progress.hidden = true;
      fileInput.value = "";
    }
  });
  return composerForm;
}
