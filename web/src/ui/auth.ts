/** Account screens: log in (with TOTP when required), register, verify e-mail, reset password. */
import { ApiError, api } from "../api";
import type { LoginBody } from "../wire";
import { signInWithEthereum, walletAvailable } from "../siwe";
import { clear, errorBox, field, form, h, messageOf } from "./dom";
import { askForCode } from "./reauth";
import { themeToggle } from "./theme";

export type Navigate = (path: string) => void;

function card(title: string, ...children: (Node | null)[]): HTMLElement {
  return h("main", { class: "auth-page" }, h("section", { class: "auth-card", "aria-labelledby": "auth-title" }, h("div", { class: "auth-head" }, h("h1", { class: "brand" }, "ChainChat"), themeToggle()), h("h2", { id: "auth-title" }, title), ...children));
}

function busy(button: HTMLButtonElement, on: boolean, label?: string): void {
  button.disabled = on;
  if (label) button.textContent = label;
}

/** An account form: its button is disabled while `run` works; a failure shows above the button. */
function accountForm(label: string, submitText: string, run: () => Promise<void>, ...fields: HTMLElement[]): HTMLFormElement {
  const err = errorBox();
  const submit = h("button", { type: "submit", class: "primary" }, submitText);
  const send = async (): Promise<void> => {
    err.show(null);
    busy(submit, true);
    try {
      await run();
    } catch (ex) {
      err.show(messageOf(ex));
      busy(submit, false);
    }
  };
  return form({ "aria-label": label }, send, ...fields, err, submit);
}

export function loginView(root: HTMLElement, navigate: Navigate, onLoggedIn: () => void, notice?: string): void {
  const email = h("input", { type: "email", name: "email", autocomplete: "username", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "current-password", required: true });
  const totp = h("input", { type: "text", name: "totp_code", inputmode: "numeric", autocomplete: "one-time-code" });
  const totpField = field("Authentication code", totp, "Six digits from your authenticator app, or a recovery code.");
  totpField.hidden = true;
  const err = errorBox();
  const submit = h("button", { type: "submit", class: "primary" }, "Log in");
  const box = form(
    { "aria-label": "Log in" },
    async () => {
      err.show(null);
      busy(submit, true);
      try {
        const body: LoginBody = { email: email.value.trim(), password: password.value };
        if (!totpField.hidden && totp.value.trim()) body.totp_code = totp.value.trim();
        const reply = await api.login(body);
        api.adoptTokens(reply);
        onLoggedIn();
      } catch (ex) {
        if (ex instanceof ApiError && ex.code === "mfa_required") {
          totpField.hidden = false;
          totp.focus();
          err.show("Enter the code from your authenticator app to finish logging in.");
        } else err.show(messageOf(ex));
      } finally {
        busy(submit, false);
      }
    },
    field("E-mail", email),
    field("Password", password),
    totpField,
    err,
    submit,
  );
  const wallet = walletAvailable()
    ? h(
        "button",
        {
          type: "button",
          class: "wallet",
          onclick: async () => {
            err.show(null);
            try {
              api.adoptTokens(await signInWithEthereum(api, false, askForCode));
              onLoggedIn();
            } catch (ex) {
              err.show(messageOf(ex));
            }
          },
        },
        "Log in with Ethereum wallet",
      )
    : null;
  clear(
    root,
    card(
      "Log in",
      notice ? h("p", { class: "notice", role: "status" }, notice) : null,
      box,
      wallet ? h("div", { class: "or" }, h("span", null, "or")) : null,
      wallet,
      h(
        "p",
        { class: "links" },
        h("a", { href: "/register", "data-route": "" }, "Create an account"),
        " · ",
        h("a", { href: "/forgot-password", "data-route": "" }, "Forgot your password?"),
      ),
    ),
  );
  void navigate;
  email.focus();
}

export function registerView(root: HTMLElement): void {
  const name = h("input", { type: "text", name: "display_name", autocomplete: "nickname", required: true, maxlength: "64" });
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: "10" });
  const box = accountForm(
    "Create account",
    "Create account",
    async () => {
      await api.register({ email: email.value.trim(), password: password.value, display_name: name.value.trim() });
      clear(
        root,
        card(
          "Check your e-mail",
          h("p", { role: "status" }, `We sent a verification link to ${email.value.trim()}. Open it to activate your account.`),
          h("p", { class: "links" }, h("a", { href: "/login", "data-route": "" }, "Back to log in")),
        ),
      );
    },
    field("Display name", name),
    field("E-mail", email),
    field("Password", password, "At least 10 characters."),
  );
  clear(root, card("Create your account", box, h("p", { class: "links" }, "Already registered? ", h("a", { href: "/login", "data-route": "" }, "Log in"))));
  name.focus();
}

export async function verifyView(root: HTMLElement, token: string | null): Promise<void> {
  const status = h("p", { role: "status" }, "Verifying your e-mail address…");
  clear(root, card("E-mail verification", status, h("p", { class: "links" }, h("a", { href: "/login", "data-route": "" }, "Go to log in"))));
  if (!token) {
    status.textContent = "This verification link is incomplete: it has no token.";
    status.className = "error";
    return;
  }
  try {
    const res = await api.verifyEmail(token);
    status.textContent =
      res.status === "pending_approval"
        ? "Your e-mail address is verified. An administrator must approve your account before you can log in."
        : "Your e-mail address is verified. You can log in now.";
    status.dataset.status = res.status;
  } catch (ex) {
    status.textContent = messageOf(ex);
    status.className = "error";
    status.setAttribute("role", "alert");
  }
}

export function forgotPasswordView(root: HTMLElement): void {
  const email = h("input", { type: "email", name: "email", autocomplete: "email", required: true });
  const box = accountForm(
    "Reset password",
    "Send reset link",
    async () => {
      await api.requestPasswordReset(email.value.trim());
      clear(box, h("p", { role: "status" }, "If an account uses this address, a reset link is on its way."));
    },
    field("E-mail", email),
  );
  clear(root, card("Reset your password", box, h("p", { class: "links" }, h("a", { href: "/login", "data-route": "" }, "Back to log in"))));
}

export function resetPasswordView(root: HTMLElement, token: string | null): void {
  const password = h("input", { type: "password", name: "password", autocomplete: "new-password", required: true, minlength: "10" });
  const box = accountForm(
    "New password",
    "Set new password",
    async () => {
      await api.resetPassword(token ?? "", password.value);
      clear(box, h("p", { role: "status" }, "Your password was changed. You can log in with it now."));
    },
    field("New password", password, "At least 10 characters."),
  );
  clear(root, card("Choose a new password", token ? box : h("p", { class: "error" }, "This reset link has no token."), h("p", { class: "links" }, h("a", { href: "/login", "data-route": "" }, "Back to log in"))));
}
