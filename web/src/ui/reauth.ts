/**
 * Recent authentication in the browser (SPEC §11): actions that change the account (two-factor
 * settings, wallet, device keys) need the password again. `withRecentAuth` runs an action and,
 * when the server answers 403 `reauth_required`, asks for the password (and the TOTP code when
 * the account has it on) in a dialog, then runs the action once more.
 */
import { ApiError, type ApiClient } from "../api";
import { errorBox, field, h, messageOf, modal } from "./dom";

/** Ask for the credentials; resolves once a reauth token is held, rejects if the user cancels. */
export function askForPassword(api: ApiClient, reason: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const password = h("input", { type: "password", autocomplete: "current-password", required: true });
    const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code" });
    const codeField = field("Authentication code", code);
    codeField.hidden = !api.user?.mfa_enabled;
    const err = errorBox();
    let done = false;
    const form = h(
      "form",
      {
        onsubmit: async (e: Event) => {
          e.preventDefault();
          err.show(null);
          try {
            await api.reauth({ password: password.value, ...(code.value.trim() ? { totp_code: code.value.trim() } : {}) });
            done = true;
            dialog.close();
            resolve();
          } catch (ex) {
            if (ex instanceof ApiError && ex.code === "mfa_required") codeField.hidden = false;
            err.show(messageOf(ex));
          }
        },
      },
      h("p", null, reason),
      field("Your password", password),
      codeField,
      err,
      h("button", { type: "submit", class: "primary" }, "Confirm"),
    );
    const dialog = modal("Confirm it's you", form);
    dialog.addEventListener("close", () => {
      if (!done) reject(new Error("Cancelled: your password is needed for this."));
    });
    password.focus();
  });
}

/** Run `action` with recent authentication: ask for the password first unless a reauth token
 *  is at hand, and once more if the server still answers `reauth_required`. */
export async function withRecentAuth<T>(api: ApiClient, reason: string, action: () => Promise<T>): Promise<T> {
  if (!api.recentlyAuthenticated) await askForPassword(api, reason);
  try {
    return await action();
  } catch (err) {
    if (!(err instanceof ApiError) || err.code !== "reauth_required") throw err;
  }
  await askForPassword(api, reason);
  return action();
}

/** Ask for the authenticator code (wallet login of an account with TOTP on). */
export function askForCode(): Promise<string> {
  return new Promise((resolve, reject) => {
    const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code", required: true });
    let done = false;
    const form = h(
      "form",
      {
        onsubmit: (e: Event) => {
          e.preventDefault();
          done = true;
          dialog.close();
          resolve(code.value.trim());
        },
      },
      field("Authentication code", code, "Six digits from your authenticator app, or a recovery code."),
      h("button", { type: "submit", class: "primary" }, "Log in"),
    );
    const dialog = modal("Two-factor authentication", form);
    dialog.addEventListener("close", () => {
      if (!done) reject(new Error("Cancelled: the authentication code is needed to log in."));
    });
    code.focus();
  });
}
