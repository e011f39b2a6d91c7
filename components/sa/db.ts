import SqliteDatabase from 'better-sqlite3';
import {
  CompiledQuery,
  Kysely,
  PostgresDialect,
  type ColumnType,
  SqliteDialect,
  SqliteDriver,
  sql,
  type DatabaseConnection,
  type Driver,
} from 'kysely';
import pg from 'pg';

/**
 * The SA's tables as Kysely sees them. One query code path serves SQLite and PostgreSQL, so
 * columns use only types both handle the same way:
 *
 * - times are ISO 8601 UTC text with milliseconds (`2025-01-02T03:04:05.678Z`, always 24
 *   characters, normalized on write by values.ts). Every value shares one fixed-width layout,
 *   so text order is time order on both engines and under any collation; they read as the
 *   records' own format in psql and sqlite3; and neither driver converts them (pg turns
 *   `timestamptz` into a Date and `bigint` into a string, SQLite has no time type);
 * - booleans are integers 0/1, since SQLite has no boolean;
 * - JSON values (JWKs, contacts, identifiers, problems) are text.
 */
export interface Database {
  accounts: AccountsTable;
  orders: OrdersTable;
  authorizations: AuthorizationsTable;
  challenges: ChallengesTable;
  order_authorizations: OrderAuthorizationsTable;
  serials: SerialsTable;
  certificates: CertificatesTable;
  ocsp_responses: OcspResponsesTable;
  crls: CrlsTable;
}

/** One row per ACME account; the key thumbprint is unique. */
export interface AccountsTable {
  id: string;
  /** JSON of the public JWK. */
  jwk: string;
  key_thumbprint: string;
  /** JSON array of contact URLs. */
  contact: string;
  status: string;
  terms_agreed: number;
  eab_key_id: string | null;
  created_at: string;
}

/** One row per order; its status is computed on read (status.ts). */
export interface OrdersTable {
  id: string;
  account_id: string;
  /** JSON array of identifiers, as the client asked for them (`*.` kept on wildcards). */
  identifiers: string;
  profile: string;
  not_before: string | null;
  not_after: string | null;
  expires: string;
  /** JSON problem document; once set the order is invalid. */
  error: string | null;
  began_processing: number;
  certificate_serial: string | null;
  replaces: string | null;
  created_at: string;
}

/** One row per authorization, owned by one account. */
export interface AuthorizationsTable {
  id: string;
  account_id: string;
  identifier_type: string;
  /** Lower-case base domain; a wildcard keeps its `*.` out of here and sets `wildcard`. */
  identifier_value: string;
  wildcard: number;
  /** Stored status: pending, valid, invalid, deactivated or revoked; `expired` is computed. */
  status: string;
  expires: string;
  /** The challenge a validation was started with; at most one attempt per authorization. */
  attempted_challenge: string | null;
  created_at: string;
}

/** The challenges an authorization offers, one row per type. */
export interface ChallengesTable {
  authorization_id: string;
  type: string;
  token: string;
  status: string;
  /** Keeps the order the RA offered the challenges in. */
  position: number;
  validated: string | null;
  error: string | null;
  /** JSON array of validation records. */
  validation_records: string;
}

/** Which authorizations an order needs; an authorization may serve several orders. */
export interface OrderAuthorizationsTable {
  order_id: string;
  authorization_id: string;
  position: number;
}

/** Serials reserved before signing, so that a serial is never used twice. */
export interface SerialsTable {
  serial: string;
  account_id: string;
  expires: string;
  created_at: string;
}

/** Issued certificates and their revocation state, keyed by serial. */
export interface CertificatesTable {
  serial: string;
  account_id: string;
  order_id: string | null;
  issuer_id: string;
  /** base64 DER. */
  der: string;
  not_before: string;
  not_after: string;
  status: string;
  revoked_at: string | null;
  revoked_reason: number | null;
  created_at: string;
}

/** The current signed OCSP response per serial (migration 0003_ocsp-crl). */
export interface OcspResponsesTable {
  serial: string;
  issuer_id: string;
  /** good or revoked: what the response says. */
  status: string;
  /** base64 DER. */
  der: string;
  this_update: string;
  next_update: string;
  updated_at: string;
}

/** The current CRL per issuer (migration 0003_ocsp-crl). */
export interface CrlsTable {
  issuer_id: string;
  /** cRLNumber; pg returns bigint columns as strings, SQLite as numbers. */
  number: ColumnType<string | number, number, number>;
  /** base64 DER. */
  der: string;
  this_update: string;
  next_update: string;
  updated_at: string;
}

/** An open database and what the SA needs to know about where it lives. */
export interface SaDatabase {
  readonly db: Kysely<Database>;
  readonly dialect: 'sqlite' | 'postgres';
  /** The PostgreSQL schema the tables live in, when the URL named one; null otherwise. */
  readonly schema: string | null;
  /** Resolves when a trivial query succeeds; rejects with the driver's error. */
  ping(): Promise<void>;
  /** Closes the connection or pool (named as Kysely names it). */
  destroy(): Promise<void>;
}

/** Tuning for openDatabase; none is needed for SQLite. */
export interface OpenDatabaseOptions {
  /** PostgreSQL only: connections in the pool. @default 10 */
  poolSize?: number;
  /** PostgreSQL only: overrides the URL's `schema` parameter. */
  schema?: string;
  /** Called when an idle pooled connection fails (the server restarted, say). */
  onPoolError?: (err: Error) => void;
}

/** SQLite waits this long for another writer (the other color) before giving up. */
const sqliteBusyTimeoutMs = 5_000;

const schemaName = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Opens `sqlite:<path>` (better-sqlite3 in WAL mode, foreign keys on) or
 * `postgres://…` / `postgresql://…` (a pg pool). A PostgreSQL URL may carry `?schema=<name>`
 * to put every table in that schema (via `search_path`), which is how tests isolate themselves.
 */
export function openDatabase(url: string, options: OpenDatabaseOptions = {}): SaDatabase {
  if (url.startsWith('sqlite:')) return openSqlite(url.slice('sqlite:'.length));
  if (url.startsWith('postgres://') || url.startsWith('postgresql://')) {
    return openPostgres(url, options);
  }
  throw new Error(
    `expected db url to start with sqlite:, postgres:// or postgresql://, got ${JSON.stringify(redactUrl(url))}`,
  );
}

/** The URL without its password, for messages and logs. */
export function redactUrl(url: string): string {
  return url.replace(/^(postgres(?:ql)?:\/\/[^:/@]*:)[^@]*@/, '$1***@');
}

function openSqlite(rawPath: string): SaDatabase {
  // `sqlite:///abs/path` and `sqlite:/abs/path` both mean /abs/path.
  const path = rawPath.startsWith('//') ? rawPath.slice(2) : rawPath;
  if (!path) throw new Error('expected db url sqlite:<path>, got an empty path');

  const database = new SqliteDatabase(path);
  if (path !== ':memory:') database.pragma('journal_mode = WAL');
  database.pragma(`busy_timeout = ${sqliteBusyTimeoutMs}`);
  database.pragma('foreign_keys = ON');

  const db = new Kysely<Database>({
    dialect: new ImmediateSqliteDialect({ database: withStatementCache(database) }),
  });
  return {
    db,
    dialect: 'sqlite',
    schema: null,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    destroy: () => db.destroy(),
  };
}

/**
 * Starts SQLite transactions with `BEGIN IMMEDIATE`. A plain `BEGIN` takes the write lock
 * only at the first write, and when another process (the other color) wrote in between,
 * SQLite fails that upgrade with SQLITE_BUSY at once instead of honouring busy_timeout.
 */
/**
 * Hands kysely the same prepared statement for the same SQL instead of preparing it on every
 * query, which costs more than running it. Safe because better-sqlite3 runs one statement at a
 * time and kysely never streams here. Bounded; the oldest statement goes first.
 */
function withStatementCache(database: SqliteDatabase.Database) {
  const statements = new Map<string, SqliteDatabase.Statement>();
  const max = 256;
  return {
    close: () => database.close(),
    prepare(sqlText: string) {
      let statement = statements.get(sqlText);
      if (!statement) {
        statement = database.prepare(sqlText);
        if (statements.size >= max) statements.delete(statements.keys().next().value as string);
        statements.set(sqlText, statement);
      }
      return statement;
    },
  };
}

class ImmediateSqliteDialect extends SqliteDialect {
  override createDriver(): Driver {
    const driver = super.createDriver() as SqliteDriver;
    driver.beginTransaction = async (connection: DatabaseConnection) => {
      await connection.executeQuery(CompiledQuery.raw('begin immediate'));
    };
    return driver;
  }
}

function openPostgres(url: string, options: OpenDatabaseOptions): SaDatabase {
  const parsed = new URL(url);
  const schema = options.schema ?? parsed.searchParams.get('schema');
  parsed.searchParams.delete('schema');
  if (schema !== null && !schemaName.test(schema)) {
    throw new Error(
      `expected db schema to be a lower-case SQL identifier (a-z, 0-9, _), got ${JSON.stringify(schema)}`,
    );
  }

  const pool = new pg.Pool({
    connectionString: parsed.toString(),
    max: options.poolSize ?? 10,
    // Every connection resolves unqualified table names in the chosen schema only.
    ...(schema ? { options: `-c search_path=${schema}` } : {}),
  });
  // Without a listener, an idle connection dropped by the server crashes the process.
  pool.on('error', (err) => options.onPoolError?.(err));

  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  return {
    db,
    dialect: 'postgres',
    schema,
    ping: async () => {
      await sql`select 1`.execute(db);
    },
    destroy: () => db.destroy(),
  };
}
