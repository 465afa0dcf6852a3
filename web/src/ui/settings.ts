/** Account settings: two-factor authentication (TOTP) and this device's keys. */
import type { ApiClient } from "../api";
import type { OwnDevice, UserPublic } from "../wire";
import type { Messenger } from "../messenger";
import { signInWithEthereum, walletAvailable } from "../siwe";
import { clear, errorBox, field, formatTime, h, messageOf } from "./dom";
import { ledgerPanel } from "./ledger-settings";
import { qrSvg } from "./qr";
import { withRecentAuth } from "./reauth";

const FOR_MFA = "Changing two-factor authentication needs your password.";

const LOG_TEXT = { anchored: "anchored on chain ✓", logged: "in the transparency log (not anchored yet)", pending: "pending: not in the log yet", invalid: "✗ its log proof does not verify" } as const;

export async function settingsView(root: HTMLElement, api: ApiClient, messenger: Messenger): Promise<void> {
  const mfa = h("section", { class: "panel", "aria-labelledby": "set-mfa" });
  const device = h("section", { class: "panel", "aria-labelledby": "set-device" });
  const wallet = h("section", { class: "panel", "aria-labelledby": "set-wallet" });
  clear(root, h("main", { class: "admin" }, h("h1", null, "Settings"), h("div", { class: "admin-grid" }, mfa, wallet, device)));

  const renderWallet = (me: UserPublic): void => {
    const err = errorBox();
    const title = h("h2", { id: "set-wallet" }, "Ethereum wallet");
    if (me.wallet_address) {
      clear(wallet, title, h("p", { role: "status" }, "Linked wallet: ", h("span", { class: "mono" }, me.wallet_address)), h("p", { class: "hint" }, "You can log in by signing a message with it (Sign-In with Ethereum)."));
      return;
    }
    clear(
      wallet,
      title,
      h("p", null, "Link a wallet to log in by signing a message instead of typing your password."),
      err,
      walletAvailable()
        ? h(
            "button",
            {
              type: "button",
              onclick: async () => {
                try {
                  const reply = await withRecentAuth(api, "Linking a wallet needs your password.", () => signInWithEthereum(api, true));
                  api.adoptTokens(reply);
                  renderWallet(reply.user);
                } catch (ex) {
                  err.show(messageOf(ex));
                }
              },
            },
            "Link Ethereum wallet",
          )
        : h("p", { class: "hint" }, "No Ethereum wallet was found in this browser."),
    );
  };

  const renderMfa = async (): Promise<void> => {
    const me = await api.me();
    api.updateUser(me);
    renderWallet(me);
    const err = errorBox();
    const title = h("h2", { id: "set-mfa" }, "Two-factor authentication");
    if (me.mfa_enabled) {
      const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code" });
      clear(
        mfa,
        title,
        h("p", { role: "status" }, "Two-factor authentication is on."),
        h(
          "form",
          {
            onsubmit: async (e: Event) => {
              e.preventDefault();
              try {
                await withRecentAuth(api, FOR_MFA, () => api.mfaDisable(code.value.trim()));
                await renderMfa();
              } catch (ex) {
                err.show(messageOf(ex));
              }
            },
          },
          field("Authentication code", code),
          err,
          h("button", { type: "submit", class: "danger" }, "Turn off two-factor authentication"),
        ),
      );
      return;
    }
    clear(
      mfa,
      title,
      h("p", null, "Protect your account with a code from an authenticator app."),
      err,
      h(
        "button",
        {
          type: "button",
          class: "primary",
          onclick: async () => {
            try {
              const setup = await withRecentAuth(api, FOR_MFA, () => api.mfaSetup());
              const code = h("input", { type: "text", inputmode: "numeric", autocomplete: "one-time-code" });
              const err2 = errorBox();
              clear(
                mfa,
                title,
                h("p", null, "Scan this code with your authenticator app (or type the key below), then enter the code it shows."),
                h("div", { class: "qr-box" }, qrSvg(setup.otpauth_uri, "QR code for your authenticator app")),
                h("p", { class: "mono secret", "aria-label": "TOTP secret" }, setup.secret),
                h("details", null, h("summary", null, "Setup link"), h("p", { class: "mono small" }, h("a", { href: setup.otpauth_uri }, setup.otpauth_uri))),
                h(
                  "form",
                  {
                    onsubmit: async (e: Event) => {
                      e.preventDefault();
                      try {
                        const res = await withRecentAuth(api, FOR_MFA, () => api.mfaEnable(code.value.trim()));
                        clear(
                          mfa,
                          title,
                          h("p", { role: "status" }, "Two-factor authentication is on. Keep these recovery codes somewhere safe:"),
                          h("ul", { class: "mono" }, (res.recovery_codes ?? []).map((c) => h("li", null, c))),
                          h("button", { type: "button", onclick: () => void renderMfa() }, "Done"),
                        );
                      } catch (ex) {
                        err2.show(messageOf(ex));
                      }
                    },
                  },
                  field("Authentication code", code),
                  err2,
                  h("button", { type: "submit", class: "primary" }, "Turn on"),
                ),
              );
            } catch (ex) {
              err.show(messageOf(ex));
            }
          },
        },
        "Set up two-factor authentication",
      ),
    );
  };

  const renderDevice = async (): Promise<void> => {
    const title = h("h2", { id: "set-device" }, "Devices");
    const rotateErr = errorBox();
    try {
      const [entry, mine] = await Promise.all([messenger.keysOf(messenger.me.id, true), api.ownDevices()]);
      const live = mine.devices.filter((d) => !d.revoked_at);
      clear(
        device,
        title,
        h("p", null, "Your private keys were generated in this browser and cannot be exported from it. Every device listed here can read the messages sent to you: revoke any you do not know."),
        h("dl", { class: "proof" }, h("dt", null, "Key id"), h("dd", { class: "mono" }, messenger.device.keyId), h("dt", null, "Published devices"), h("dd", null, String(entry.keys.length))),
        h(
          "ul",
          { class: "devices", "aria-label": "Your devices" },
          live.map((d) => deviceRow(d, LOG_TEXT[entry.logStatus.get(d.key_id) ?? "pending"])),
        ),
        rotateErr,
        h(
          "button",
          {
            type: "button",
            onclick: async (e: Event) => {
              const button = e.currentTarget as HTMLButtonElement;
              if (!confirm("Replace this device's keys? Your contacts will see that your keys changed and should compare safety numbers again.")) return;
              button.disabled = true;
              rotateErr.show(null);
              try {
                await withRecentAuth(api, "New keys for this device need your password.", () => messenger.rotateKeys());
                await renderDevice();
              } catch (ex) {
                rotateErr.show(messageOf(ex));
                button.disabled = false;
              }
            },
          },
          "Rotate this device's keys",
        ),
      );
    } catch (ex) {
      clear(device, title, h("p", { class: "error" }, messageOf(ex)));
    }
  };

  const deviceRow = (d: OwnDevice, logText: string): HTMLElement => {
    const here = d.key_id === messenger.device.keyId;
    const err = errorBox();
    const name = d.label ?? "Unnamed device";
    return h(
      "li",
      { class: "small" },
      h("span", null, name, here ? " (this device)" : ""),
      " · ",
      h("span", { class: "mono" }, d.key_id),
      ` · added ${formatTime(d.created_at)}`,
      ` · ${logText}`,
      here
        ? null
        : h(
            "button",
            {
              type: "button",
              class: "danger small",
              "aria-label": `Revoke ${name} (${d.key_id})`,
              onclick: async () => {
                if (!confirm(`Revoke ${name}? It will no longer receive your messages.`)) return;
                try {
                  await withRecentAuth(api, "Revoking a device needs your password.", () => api.revokeKey(d.key_id));
                  messenger.forgetKeys(messenger.me.id);
                  await renderDevice();
                } catch (ex) {
                  err.show(messageOf(ex));
                }
              },
            },
            "Revoke",
          ),
      err,
    );
  };
  await Promise.all([renderMfa().catch((ex) => clear(mfa, h("p", { class: "error" }, messageOf(ex)))), renderDevice(), ledgerPanel(messenger).then((panel) => device.after(panel))]);
}
