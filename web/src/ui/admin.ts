/** Admin panel: pending approvals, users (disable/enable, role), audit log, ledger status. */
import type { ApiClient, UserPublic } from "../api";
import { clear, errorBox, field, form, formatTime, h, messageOf } from "./dom";

interface AuditFilter {
  type?: string;
  userId?: string;
  /** datetime-local value (the browser's time zone) */
  since?: string;
}

const AUDIT_TYPES = ["register", "email_verified", "user_approved", "user_rejected", "user_disabled", "user_enabled", "role_changed", "login", "login_failed", "logout", "refresh_token_reused", "mfa_enabled", "mfa_disabled", "mfa_recovery_code_used", "password_reset_requested", "password_reset", "password_changed", "reauth", "reauth_failed", "key_published", "key_revoked", "wallet_linked", "wallet_unlinked", "signing_key_rotated"];

export class AdminScreen {
  private pending = h("section", { class: "panel", "aria-labelledby": "adm-pending" });
  private users = h("section", { class: "panel wide", "aria-labelledby": "adm-users" });
  private audit = h("section", { class: "panel wide", "aria-labelledby": "adm-audit" });
  private names = new Map<string, string>();
  private ledger = h("section", { class: "panel", "aria-labelledby": "adm-ledger" });
  private err = errorBox();
  private auditFilter: AuditFilter = {};
  private auditTicket = 0;

  constructor(
    private readonly root: HTMLElement,
    private readonly api: ApiClient,
    private readonly meId: string,
  ) {}

  async mount(): Promise<void> {
    clear(
      this.root,
      h(
        "main",
        { class: "admin" },
        h("h1", null, "Administration"),
        this.err,
        h("div", { class: "admin-grid" }, this.pending, this.ledger, this.users, this.audit),
      ),
    );
    await Promise.all([this.loadPending(), this.loadLedger(), this.loadUsers().then(() => this.loadAudit())]);
  }

  private async action(user: UserPublic, action: string): Promise<void> {
    this.err.show(null);
    try {
      await this.api.adminAction(user.id, action);
      await Promise.all([this.loadPending(), this.loadUsers().then(() => this.loadAudit())]);
    } catch (ex) {
      this.err.show(messageOf(ex));
    }
  }

  private async list(status?: string): Promise<UserPublic[]> {
    return (await this.api.adminUsers(status)).users;
  }

  private async loadPending(): Promise<void> {
    const title = h("h2", { id: "adm-pending" }, "Pending approvals");
    try {
      const users = await this.list("pending");
      clear(
        this.pending,
        title,
        users.length === 0
          ? h("p", { class: "hint" }, "Nobody is waiting for approval.")
          : h(
              "div",
              { class: "table-wide" },
              h(
              "table",
              { "aria-label": "Pending approvals" },
              h("thead", null, h("tr", null, h("th", null, "Name"), h("th", null, "E-mail"), h("th", null, "Registered"), h("th", null, ""))),
              h(
                "tbody",
                null,
                users.map((u) =>
                  h(
                    "tr",
                    { dataset: { userId: u.id } },
                    h("td", null, u.display_name),
                    h("td", null, u.email),
                    h("td", null, formatTime(u.created_at)),
                    h(
                      "td",
                      null,
                      h(
                        "div",
                        { class: "row-actions" },
                        h("button", { type: "button", class: "small primary", "aria-label": `Approve ${u.email}`, onclick: () => this.action(u, "approve") }, "Approve"),
                        h("button", { type: "button", class: "small danger", "aria-label": `Reject ${u.email}`, onclick: () => this.action(u, "reject") }, "Reject"),
                      ),
                    ),
                  ),
                ),
              ),
              ),
            ),
      );
    } catch (ex) {
      clear(this.pending, title, h("p", { class: "error" }, messageOf(ex)));
    }
  }

  private async loadUsers(): Promise<void> {
    const title = h("h2", { id: "adm-users" }, "Users");
    try {
      const all = await this.list();
      for (const u of all) this.names.set(u.id, u.display_name);
      const users = all.filter((u) => u.status !== "pending_approval");
      clear(
        this.users,
        title,
        h(
          "div",
          { class: "table-wide" },
          h(
          "table",
          { "aria-label": "Users" },
          h("thead", null, h("tr", null, h("th", null, "Name"), h("th", null, "E-mail"), h("th", null, "Status"), h("th", null, "Role"), h("th", null, ""))),
          h(
            "tbody",
            null,
            users.map((u) => {
              const self = u.id === this.meId;
              const role = h(
                "select",
                { "aria-label": `Role of ${u.email}`, disabled: self },
                h("option", { value: "member", selected: u.role === "member" }, "member"),
                h("option", { value: "admin", selected: u.role === "admin" }, "admin"),
              );
              role.addEventListener("change", async () => {
                try {
                  await this.api.adminSetRole(u.id, role.value as UserPublic["role"]);
                  await this.loadAudit();
                } catch (ex) {
                  this.err.show(messageOf(ex));
                  role.value = u.role;
                }
              });
              const toggle =
                u.status === "disabled"
                  ? h("button", { type: "button", class: "small", "aria-label": `Enable ${u.email}`, onclick: () => this.action(u, "enable") }, "Enable")
                  : u.status === "active" && !self
                    ? h("button", { type: "button", class: "small danger", "aria-label": `Disable ${u.email}`, onclick: () => this.action(u, "disable") }, "Disable")
                    : null;
              return h(
                "tr",
                { dataset: { userId: u.id } },
                h("td", null, u.display_name, self ? h("small", null, " (you)") : null),
                h("td", null, u.email),
                h("td", null, h("span", { class: `status ${u.status}` }, u.status.replace(/_/g, " "))),
                h("td", null, role),
                h("td", null, h("div", { class: "row-actions" }, toggle)),
              );
            }),
          ),
          ),
        ),
      );
    } catch (ex) {
      clear(this.users, title, h("p", { class: "error" }, messageOf(ex)));
    }
  }

  private who(id: string | null | undefined): string {
    if (!id) return "—";
    return this.names.get(id) ?? `${id.slice(0, 8)}…`;
  }

  private async loadLedger(): Promise<void> {
    const title = h("h2", { id: "adm-ledger" }, "Ledger");
    try {
      const info = await this.api.ledgerInfo();
      const head = info.latest_head;
      const dl = h("dl", { class: "proof" });
      const row = (k: string, v: unknown): void => void dl.append(h("dt", null, k), h("dd", { class: "mono" }, v === null || v === undefined ? "—" : String(v)));
      row("Chain id", info.chain_id);
      row("Chain status", info.chain_status);
      row("Contract", info.contract_address);
      row("Public RPC", info.rpc_url_public);
      row("Log size", info.tree_size);
      row("Backlog (leaves not anchored yet)", info.pending_leaves);
      row("Last anchored head", head ? `#${head.index} · ${head.tree_size} leaves` : "none yet");
      row("Root hash", head?.root_hash);
      row("Transaction", head?.tx_hash);
      row("Block", head?.block_number);
      row("Anchored at", head?.anchored_at);
      if (info.chain_epoch) row("Chain redeployments", info.chain_epoch);
      if (info.lost_anchors) row("Anchors lost with a reset chain", info.lost_anchors);
      clear(this.ledger, title, dl, h("button", { type: "button", class: "small", onclick: () => void this.loadLedger() }, "Refresh"));
    } catch (ex) {
      clear(this.ledger, title, h("p", { class: "error" }, messageOf(ex)));
    }
  }

  private async loadAudit(filter: AuditFilter = this.auditFilter): Promise<void> {
    this.auditFilter = filter;
    const ticket = ++this.auditTicket; // only the latest request may draw the table
    const title = h("h2", { id: "adm-audit" }, "Audit log");
    const type = h("input", { type: "text", value: filter.type ?? "", placeholder: "e.g. login_failed", list: "audit-types" });
    const types = h("datalist", { id: "audit-types" }, AUDIT_TYPES.map((t) => h("option", { value: t })));
    const user = h(
      "select",
      null,
      h("option", { value: "" }, "Anyone"),
      [...this.names].sort((a, b) => a[1].localeCompare(b[1])).map(([id, name]) => h("option", { value: id, selected: id === filter.userId }, name)),
    );
    const since = h("input", { type: "datetime-local", value: filter.since ?? "" });
    const filters = form(
      { class: "inline audit-filters", "aria-label": "Filter the audit log" },
      () => void this.loadAudit({ type: type.value.trim() || undefined, userId: user.value || undefined, since: since.value || undefined }),
      field("Event type", type),
      types,
      field("User", user),
      field("Since", since),
      h("button", { type: "submit", class: "small" }, "Filter"),
    );
    const query = { limit: 100, type: filter.type, user_id: filter.userId, since: filter.since ? new Date(filter.since).toISOString() : undefined };
    try {
      const { events } = await this.api.adminAudit(query);
      if (ticket !== this.auditTicket) return;
      clear(
        this.audit,
        title,
        filters,
        h(
          "div",
          { class: "table-scroll" },
          h(
            "table",
            { "aria-label": "Audit log" },
            h("thead", null, h("tr", null, h("th", null, "When"), h("th", null, "Event"), h("th", null, "User"), h("th", null, "By"), h("th", null, "IP"), h("th", null, "Proof"))),
            h(
              "tbody",
              null,
              events.map((ev) =>
                h(
                  "tr",
                  null,
                  h("td", null, formatTime(ev.at)),
                  h("td", null, ev.type, ev.detail && Object.keys(ev.detail).length ? h("small", { class: "detail" }, ` ${JSON.stringify(ev.detail)}`) : null),
                  h("td", { title: ev.user_id ?? "" }, this.who(ev.user_id)),
                  h("td", { title: ev.actor_id ?? "" }, this.who(ev.actor_id)),
                  h("td", null, ev.ip ?? "—"),
                  h("td", null, h("span", { class: `badge ${ev.proof_status ?? ev.proof?.status ?? "pending"}` }, ev.proof_status ?? ev.proof?.status ?? "logged")),
                ),
              ),
            ),
          ),
        ),
      );
    } catch (ex) {
      if (ticket !== this.auditTicket) return;
      clear(this.audit, title, filters, h("p", { class: "error" }, messageOf(ex)));
    }
  }
}
