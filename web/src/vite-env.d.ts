/// <reference types="vite/client" />

interface ImportMetaEnv {
  /** The ledger to trust, `<chain_id>:<contract address>` (SPEC §11); else pinned on first use. */
  readonly VITE_CHAINCHAT_LEDGER?: string;
}
