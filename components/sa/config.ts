import { z } from 'zod';
import { allowList, commonConfig, listenAddress } from '../lib/config.js';

/** A db URL the SA can open; see db.ts for the forms. */
export const dbUrl = z
  .string()
  .regex(
    /^(sqlite:.+|postgres(ql)?:\/\/.+)$/,
    'expected sqlite:<path>, postgres://… or postgresql://…',
  );

/** The SA's config file. New fields get defaults so an older release's file still loads. */
export const saConfig = z.strictObject({
  ...commonConfig,
  listen: listenAddress,
  db: z.strictObject({
    url: dbUrl,
    /** PostgreSQL connections per SA process; ignored for SQLite. @default 10 */
    poolSize: z.number().int().min(1).max(100).default(10),
  }),
  /** Client identities per RPC service name; the SA's defaults when absent. */
  allowedClients: allowList.optional(),
});
/** The SA's config after validation and defaults. */
export type SaConfig = z.output<typeof saConfig>;
