//! Persistence with sqlx: Postgres in clusters, SQLite in local mode, the same schema and the same
//! queries (`$n` placeholders work on both), migrations in `agent/migrations/{postgres,sqlite}`.
//!
//! Writes are batched in transactions; an order is idempotent by (strategy, decision id), enforced by
//! the primary key, so a replayed decision never records (or trades) twice.

use crate::audit::{AuditChain, AuditEntry, AuditKey};
use protocol::messages::Decision;
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions};
use sqlx::{QueryBuilder, Row};
use std::str::FromStr;

/// Rows per multi-row INSERT (well under both backends' bind-parameter limits).
const CHUNK: usize = 500;

/// Why the store failed, naming the database (without its credentials) and what was being done.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL {0:?}: use sqlite://PATH or postgres://HOST/DB")]
    /// The URL is neither `sqlite:` nor `postgres:`; the URL, password redacted.
    Scheme(String),
    #[error("{db}: {doing}: {error}")]
    /// A connection or query failed.
    Sql {
        /// The database's URL, password redacted.
        db: String,
        /// What was being done (`connecting`, `storing positions`, ...).
        doing: &'static str,
        /// sqlx's error.
        error: sqlx::Error,
    },
    #[error("{db}: {doing}: {error}")]
    /// The schema migrations failed (or the database is ahead of this binary).
    Migrate {
        /// The database's URL, password redacted.
        db: String,
        /// What was being done (`running migrations`).
        doing: &'static str,
        /// sqlx's migration error.
        error: sqlx::migrate::MigrateError,
    },
    #[error("{0}: no such database file (nothing to read; check the path)")]
    /// [`Store::connect_existing`] was given a SQLite path with no file; the URL, redacted.
    Missing(String),
    /// A stored value that cannot be read back (what, and why).
    #[error("{0}")]
    Corrupt(String),
    #[error("the task writing to the store stopped: {0}")]
    /// The background task batching writes panicked or was cancelled; its error, as text.
    Writer(String),
}

impl StoreError {
    /// Whether the database may answer if asked again: it is unreachable, restarting or shutting
    /// down (I/O, pool timeouts, PostgreSQL's connection classes 08 and 57P), not a query it
    /// refused. A writer retries these and gives up on the rest.
    pub fn is_transient(&self) -> bool {
        let Self::Sql { error, .. } = self else {
            return false;
        };
        match error {
            sqlx::Error::Io(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed
            | sqlx::Error::Protocol(_) => true,
            sqlx::Error::Database(db) => db
                .code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P")),
            _ => false,
        }
    }
}

/// A trained model as the `models` table keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredModel {
    /// Its version (1 for the first retraining).
    pub version: i64,
    /// The candle time it was trained at (ms).
    pub trained_at: i64,
    /// Its evaluation, JSON (`ml::RetrainReport`).
    pub metrics: String,
    /// The model's bytes (`ml::Ensemble::to_bytes`).
    pub model: Vec<u8>,
}

/// How a SQLite file is written.
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// WAL, synced at checkpoints: survives crashes, readers beside the writer.
    Durable,
    /// No journal, no syncs: see [`Store::create_output_file`].
    OutputFile,
}

/// A database, Postgres or SQLite.
#[derive(Debug, Clone)]
pub enum Store {
    /// A SQLite file (local mode, backtests), one connection.
    Sqlite {
        /// The connection pool.
        pool: SqlitePool,
        /// The URL, password redacted, for messages.
        db: String,
    },
    /// A Postgres database (clusters), up to eight connections.
    Postgres {
        /// The connection pool.
        pool: PgPool,
        /// The URL, password redacted, for messages.
        db: String,
    },
}

/// Runs the same body against whichever pool the store holds.
macro_rules! on_pool {
    ($store:expr, $pool:ident => $body:expr) => {
        match $store {
            Store::Sqlite { pool: $pool, .. } => $body,
            Store::Postgres { pool: $pool, .. } => $body,
        }
    };
}

/// `INSERT INTO decisions … ON CONFLICT DO NOTHING` for `rows`, then `tail`, as a query builder of
/// whichever database the pool is (a macro: the builder's type differs between the two).
macro_rules! insert_decisions {
    ($strategy:expr, $rows:expr, $tail:expr) => {{
        let mut q = QueryBuilder::new("INSERT INTO decisions (id, strategy, symbol, action, confidence, consensus_reached, escalated, vetoed, rejected, rounds, votes, price, decided_at, transcript, resolved_by) ");
        q.push_values($rows, |mut b, d: &DecisionRow| {
            b.push_bind(d.id.as_str())
                .push_bind($strategy)
                .push_bind(d.symbol.as_str())
                .push_bind(d.action.as_str())
                .push_bind(d.confidence)
                .push_bind(d.consensus_reached)
                .push_bind(d.escalated)
                .push_bind(d.vetoed)
                .push_bind(d.rejected)
                .push_bind(d.rounds)
                .push_bind(d.votes.as_str())
                .push_bind(d.price)
                .push_bind(d.decided_at)
                .push_bind(d.transcript.as_str())
                .push_bind(d.resolved_by.as_deref());
        });
        q.push(" ON CONFLICT DO NOTHING");
        q.push($tail);
        q
    }};
}

mod details;
mod reads;
mod rows;
pub use details::MAX_CURVE_POINTS;
pub use reads::{DecisionSummary, Snapshot, StoredPortfolio, StoredPosition, StoredWeight};
pub use rows::{Audited, DecisionRow, OrderRow};

/// A URL with any password replaced, for messages.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            format!("{}://***@{}", &url[..scheme], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}

pub use protocol::messages::OrderStatus;

/// What the executor did with a decision's order: the executor service's report on `….order`, and
/// the `orders` row with its audit entry.
pub type OrderRecord = protocol::messages::OrderReport;

/// The audit log page by page, from [`Store::audit_pages`]; each page continues after the last
/// entry of the one before (keyset paging on the log's primary key).
pub struct AuditPages<'a> {
    store: &'a Store,
    after: Option<(String, i64)>,
    limit: u32,
}

impl AuditPages<'_> {
    /// The next page of (strategy, entry), `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<(String, AuditEntry)>>, StoreError> {
        let after = self
            .after
            .as_ref()
            .map(|(strategy, seq)| (strategy.as_str(), *seq));
        let page = self.store.audit_page(after, self.limit).await?;
        let Some((strategy, entry)) = page.last() else {
            return Ok(None);
        };
        self.after = Some((strategy.clone(), entry.seq));
        Ok(Some(page))
    }
}

/// The file a `sqlite:` URL names, if it names one (not `:memory:`).
fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let options = SqliteConnectOptions::from_str(url).ok()?;
    let path = options.get_filename();
    (url.starts_with("sqlite:") && !url.contains(":memory:")).then(|| path.to_path_buf())
}

impl Store {
    /// Connects (creating a SQLite file if needed) and runs the migrations.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::open(url, Durability::Durable).await
    }

    /// Connects to a database that must already exist, for commands that only read what another
    /// process wrote (`audit verify`): a SQLite path that names no file is an error instead of a new,
    /// empty database that would pass every check.
    pub async fn connect_existing(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = sqlite_path(url) {
            if !path.exists() {
                return Err(StoreError::Missing(redact(url)));
            }
        }
        Self::connect(url).await
    }

    /// Creates a new SQLite file that one process writes from start to finish and nobody reads
    /// until it is complete (a backtest's output): no rollback journal or WAL and no syncs, so each
    /// page is written once. A crash can leave the file unusable, so write it under a temporary
    /// name and rename it when done (see `trading-agent backtest`).
    pub async fn create_output_file(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open(
            &format!("sqlite://{}", path.display()),
            Durability::OutputFile,
        )
        .await
    }

    /// Waits for pending work and closes the connections (a SQLite file is complete afterwards).
    pub async fn close(&self) {
        match self {
            Store::Sqlite { pool, .. } => pool.close().await,
            Store::Postgres { pool, .. } => pool.close().await,
        }
    }

    async fn open(url: &str, durability: Durability) -> Result<Self, StoreError> {
        let db = redact(url);
        let sql = |doing| {
            let db = db.clone();
            move |error| StoreError::Sql { db, doing, error }
        };
        let store = if url.starts_with("sqlite:") {
            use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
            let (journal, synchronous) = match durability {
                Durability::Durable => (SqliteJournalMode::Wal, SqliteSynchronous::Normal),
                Durability::OutputFile => (SqliteJournalMode::Off, SqliteSynchronous::Off),
            };
            let options = SqliteConnectOptions::from_str(url)
                .map_err(sql("parsing the URL"))?
                .create_if_missing(true)
                .journal_mode(journal)
                .synchronous(synchronous);
            let pool = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(options)
                .await
                .map_err(sql("connecting"))?;
            Store::Sqlite {
                pool,
                db: db.clone(),
            }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(8)
                .acquire_timeout(std::time::Duration::from_secs(5))
                .connect(url)
                .await
                .map_err(sql("connecting"))?;
            Store::Postgres {
                pool,
                db: db.clone(),
            }
        } else {
            return Err(StoreError::Scheme(db));
        };
        let migrate = |error| StoreError::Migrate {
            db: db.clone(),
            doing: "running migrations",
            error,
        };
        match &store {
            Store::Sqlite { pool, .. } => sqlx::migrate!("./migrations/sqlite")
                .run(pool)
                .await
                .map_err(migrate)?,
            Store::Postgres { pool, .. } => sqlx::migrate!("./migrations/postgres")
                .run(pool)
                .await
                .map_err(migrate)?,
        }
        Ok(store)
    }

    /// Whether the database answers a trivial query (for `/readyz`).
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("SELECT 1")
            .execute(pool)
            .await
            .map(|_| ())
            .map_err(self.err("pinging"))?);
        Ok(())
    }

    /// The database, credentials redacted.
    pub fn name(&self) -> &str {
        match self {
            Store::Sqlite { db, .. } | Store::Postgres { db, .. } => db,
        }
    }

    fn err(&self, doing: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
        move |error| StoreError::Sql {
            db: self.name().to_string(),
            doing,
            error,
        }
    }

    /// The head of a strategy's audit chain, to continue it under `key`.
    pub async fn audit_chain(
        &self,
        strategy: &str,
        key: &AuditKey,
    ) -> Result<AuditChain, StoreError> {
        let row = on_pool!(self, pool => sqlx::query("SELECT seq, hash FROM audit_log WHERE strategy = $1 ORDER BY seq DESC LIMIT 1")
            .bind(strategy)
            .fetch_optional(pool)
            .await
            .map_err(self.err("reading the audit chain"))?
            .map(|r| (r.get::<i64, _>(0), r.get::<String, _>(1))));
        let (seq, hash) = row.unwrap_or_else(|| (0, crate::audit::GENESIS.to_string()));
        Ok(AuditChain::resume(seq, hash, key.clone()))
    }

    /// The hash of entry `seq` of a strategy's audit chain, as stored; `None` when there is no such
    /// row (checked against an anchor: a chain that lost it was truncated).
    pub async fn audit_hash(&self, strategy: &str, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(
            on_pool!(self, pool => sqlx::query_scalar::<_, String>("SELECT hash FROM audit_log WHERE strategy = $1 AND seq = $2")
            .bind(strategy)
            .bind(seq)
            .fetch_optional(pool)
            .await
            .map_err(self.err("reading the audit chain"))?),
        )
    }

    /// Records decisions with their debates and orders, and appends them to the audit chain, in one
    /// transaction. A decision or order already stored (same strategy and id) is left as it is.
    pub async fn record(
        &self,
        strategy: &str,
        chain: &mut AuditChain,
        decisions: &[Decision],
        orders: &[OrderRecord],
    ) -> Result<(), StoreError> {
        let decision_rows: Vec<DecisionRow> = decisions.iter().map(DecisionRow::of).collect();
        let order_rows: Vec<OrderRow> = orders.iter().map(OrderRow::of).collect();
        let mut pending = chain.clone();
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err("starting a transaction"))?;
            // a decision carries its debate (one JSON array); one already stored is left as it is,
            // and only what is new reaches the audit log (a replayed batch adds no audit row)
            let mut new_decisions = std::collections::HashSet::new();
            for chunk in decision_rows.chunks(CHUNK) {
                // the common case, all new, without RETURNING (which costs a replay ~20%); a chunk
                // that meets stored decisions is rolled back and inserted again, naming the new ones
                let mut all_new = sqlx::Acquire::begin(&mut *tx).await.map_err(self.err("starting a savepoint"))?;
                let inserted = insert_decisions!(strategy, chunk, "")
                    .build()
                    .execute(&mut *all_new)
                    .await
                    .map_err(self.err("storing decisions"))?
                    .rows_affected();
                if inserted == chunk.len() as u64 {
                    all_new.commit().await.map_err(self.err("storing decisions"))?;
                    new_decisions.extend(chunk.iter().map(|d| d.id.clone()));
                    continue;
                }
                all_new.rollback().await.map_err(self.err("storing decisions"))?;
                let ids: Vec<String> = insert_decisions!(strategy, chunk, " RETURNING id")
                    .build_query_scalar()
                    .fetch_all(&mut *tx)
                    .await
                    .map_err(self.err("storing decisions"))?;
                new_decisions.extend(ids);
            }
            let mut new_orders = std::collections::HashSet::new();
            for chunk in order_rows.chunks(CHUNK) {
                let mut q = QueryBuilder::new("INSERT INTO orders (strategy, decision_id, symbol, side, kind, quantity, status, price, fee, reason, at) ");
                q.push_values(chunk, |mut b, o| {
                    b.push_bind(strategy)
                        .push_bind(o.decision_id.as_str())
                        .push_bind(o.symbol.as_str())
                        .push_bind(o.side.as_str())
                        .push_bind(o.kind.as_str())
                        .push_bind(o.quantity.as_str())
                        .push_bind(o.status.as_str())
                        .push_bind(o.price.as_deref())
                        .push_bind(o.fee.as_deref())
                        .push_bind(o.reason.as_str())
                        .push_bind(o.at);
                });
                q.push(" ON CONFLICT DO NOTHING RETURNING decision_id");
                let ids: Vec<String> = q.build_query_scalar().fetch_all(&mut *tx).await.map_err(self.err("storing orders"))?;
                new_orders.extend(ids);
            }
            let audit = audit_entries(&mut pending, decisions, &decision_rows, &new_decisions, orders, &order_rows, &new_orders);
            for chunk in audit.chunks(CHUNK) {
                let mut q = QueryBuilder::new("INSERT INTO audit_log (strategy, seq, at, kind, subject, payload, prev_hash, hash) ");
                q.push_values(chunk, |mut b, e| {
                    b.push_bind(strategy)
                        .push_bind(e.seq)
                        .push_bind(e.at)
                        .push_bind(e.kind.as_str())
                        .push_bind(e.subject.as_str())
                        .push_bind(e.payload.as_str())
                        .push_bind(e.prev_hash.as_str())
                        .push_bind(e.hash.as_str());
                });
                q.build().execute(&mut *tx).await.map_err(self.err("appending to the audit log"))?;
            }
            tx.commit().await.map_err(self.err("committing"))?;
        });
        *chain = pending;
        Ok(())
    }

    /// Records one order if its decision has none yet; `false` when it already had one (idempotency).
    pub async fn insert_order_once(
        &self,
        strategy: &str,
        record: &OrderRecord,
    ) -> Result<bool, StoreError> {
        let o = &record.order;
        let done = on_pool!(self, pool => sqlx::query("INSERT INTO orders (strategy, decision_id, symbol, side, kind, quantity, status, price, fee, reason, at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING")
            .bind(strategy)
            .bind(o.decision_id.as_str())
            .bind(o.symbol.as_str())
            .bind(side(o.side))
            .bind(kind(o.kind))
            .bind(o.quantity.to_string())
            .bind(record.status.as_str())
            .bind(record.fill.as_ref().map(|f| f.price.to_string()))
            .bind(record.fill.as_ref().map(|f| f.fee.to_string()))
            .bind(record.reason.as_str())
            .bind(o.at)
            .execute(pool)
            .await
            .map_err(self.err("storing an order"))?
            .rows_affected());
        Ok(done == 1)
    }

    /// Stores a trained model (its bytes and evaluation); a version already stored is kept.
    pub async fn save_model(
        &self,
        strategy: &str,
        name: &str,
        version: i64,
        trained_at: i64,
        metrics: &str,
        model: &[u8],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => sqlx::query("INSERT INTO models (strategy, name, version, trained_at, metrics, model) VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING")
            .bind(strategy)
            .bind(name)
            .bind(version)
            .bind(trained_at)
            .bind(metrics)
            .bind(model)
            .execute(pool)
            .await
            .map_err(self.err("storing a model"))
            .map(|_| ())?);
        Ok(())
    }

    /// The newest model `name` of `strategy` (highest version), if one is stored.
    pub async fn latest_model(
        &self,
        strategy: &str,
        name: &str,
    ) -> Result<Option<StoredModel>, StoreError> {
        let sql = "SELECT version, trained_at, metrics, model FROM models WHERE strategy = $1 AND name = $2 ORDER BY version DESC LIMIT 1";
        let row: Option<(i64, i64, String, Vec<u8>)> = on_pool!(self, pool => sqlx::query_as(sql)
            .bind(strategy)
            .bind(name)
            .fetch_optional(pool)
            .await
            .map_err(self.err("reading the newest model"))?);
        Ok(
            row.map(|(version, trained_at, metrics, model)| StoredModel {
                version,
                trained_at,
                metrics,
                model,
            }),
        )
    }

    /// Stores the current vote weights.
    pub async fn save_weights(
        &self,
        strategy: &str,
        at: i64,
        weights: &[(String, f64)],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err("starting a transaction"))?;
            for (assistant, weight) in weights {
                sqlx::query("INSERT INTO assistant_weights (strategy, assistant, weight, updated_at) VALUES ($1, $2, $3, $4) ON CONFLICT (strategy, assistant) DO UPDATE SET weight = excluded.weight, updated_at = excluded.updated_at")
                    .bind(strategy)
                    .bind(assistant.as_str())
                    .bind(*weight)
                    .bind(at)
                    .execute(&mut *tx)
                    .await
                    .map_err(self.err("storing weights"))?;
            }
            tx.commit().await.map_err(self.err("committing"))?;
        });
        Ok(())
    }

    /// The audit log in chain order (strategy, then seq), read in pages of at most `limit` entries
    /// from the entry after `after` (from the start when `None`). Reading page by page keeps memory
    /// constant and holds no long read transaction open on a live database.
    pub fn audit_pages(&self, after: Option<(&str, i64)>, limit: u32) -> AuditPages<'_> {
        AuditPages {
            store: self,
            after: after.map(|(strategy, seq)| (strategy.to_string(), seq)),
            limit,
        }
    }

    /// At most `limit` audit entries after the entry `after` (from the start when `None`).
    async fn audit_page(
        &self,
        after: Option<(&str, i64)>,
        limit: u32,
    ) -> Result<Vec<(String, AuditEntry)>, StoreError> {
        // every strategy name is non-empty, so ("", MIN) is before the first entry
        let (strategy, seq) = after.unwrap_or(("", i64::MIN));
        let rows = on_pool!(self, pool => sqlx::query("SELECT strategy, seq, at, kind, subject, payload, prev_hash, hash FROM audit_log WHERE (strategy, seq) > ($1, $2) ORDER BY strategy, seq LIMIT $3")
            .bind(strategy)
            .bind(seq)
            .bind(i64::from(limit))
            .fetch_all(pool)
            .await
            .map_err(self.err("reading the audit log"))?
            .into_iter()
            .map(|r| {
                (
                    r.get::<String, _>(0),
                    AuditEntry {
                        seq: r.get(1),
                        at: r.get(2),
                        kind: r.get(3),
                        subject: r.get(4),
                        payload: r.get(5),
                        prev_hash: r.get(6),
                        hash: r.get(7),
                    },
                )
            })
            .collect::<Vec<_>>());
        Ok(rows)
    }

    /// Counts the rows of a table for a strategy (tests and reports).
    pub async fn count(&self, table: Table, strategy: &str) -> Result<i64, StoreError> {
        let sql = match table {
            Table::Decisions => "SELECT COUNT(*) FROM decisions WHERE strategy = $1",
            Table::Opinions => "SELECT COUNT(*) FROM opinions WHERE strategy = $1",
            Table::Orders => "SELECT COUNT(*) FROM orders WHERE strategy = $1",
            Table::AuditLog => "SELECT COUNT(*) FROM audit_log WHERE strategy = $1",
            Table::AssistantWeights => "SELECT COUNT(*) FROM assistant_weights WHERE strategy = $1",
        };
        let n = on_pool!(self, pool => sqlx::query(sql)
            .bind(strategy)
            .fetch_one(pool)
            .await
            .map_err(self.err("counting rows"))?
            .get::<i64, _>(0));
        Ok(n)
    }
}

/// A page of rows for the HTTP API, filtered by symbol and time (ms since the epoch, inclusive).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Deserialize)]
pub struct PageQuery {
    /// Only this symbol's rows; None for every symbol.
    pub symbol: Option<String>,
    /// Earliest time, ms since the epoch; None: no lower bound.
    pub from: Option<i64>,
    /// Latest time, ms since the epoch; None: no upper bound.
    pub to: Option<i64>,
    /// Rows per page (the API accepts 1 to 1000); None: 100.
    pub limit: Option<i64>,
    /// Rows skipped before the page; None: 0.
    pub offset: Option<i64>,
}

/// A page of one strategy's rows, newest first: `SELECT {columns_from}` filtered by symbol ($2) and
/// the time column between $3 and $4, then LIMIT $5 OFFSET $6. Two statements (with and without the
/// symbol) rather than `$2 IS NULL OR symbol = $2`, so that each gets a plan on its own index: a
/// generic plan for both would scan and sort the strategy's whole history. Every piece of the
/// statement is a literal of this module; the values are bound.
fn page_sql(columns_from: &str, time: &str, tiebreak: &str, q: &PageQuery) -> String {
    let symbol = if q.symbol.is_some() {
        "symbol = $2"
    } else {
        "$2 IS NULL"
    };
    format!(
        "SELECT {columns_from} WHERE strategy = $1 AND {symbol} AND {time} >= $3 AND {time} <= $4 \
         ORDER BY {time} DESC, {tiebreak} DESC LIMIT $5 OFFSET $6"
    )
}

impl Store {
    /// Decisions, newest first.
    pub async fn decisions_page(
        &self,
        strategy: &str,
        q: &PageQuery,
    ) -> Result<Vec<DecisionSummary>, StoreError> {
        let sql = page_sql(
            "id, symbol, action, confidence, consensus_reached, escalated, vetoed, rounds, votes, price, decided_at, rejected, resolved_by FROM decisions",
            "decided_at",
            "id",
            q,
        );
        self.page("reading decisions", &sql, strategy, q).await
    }

    /// Orders, newest first.
    pub async fn orders_page(
        &self,
        strategy: &str,
        q: &PageQuery,
    ) -> Result<Vec<OrderRow>, StoreError> {
        let sql = page_sql(
            "decision_id, symbol, side, kind, quantity, status, price, fee, reason, at FROM orders",
            "at",
            "decision_id",
            q,
        );
        self.page("reading orders", &sql, strategy, q).await
    }

    /// Runs a [`page_sql`] statement with `q`'s values bound, each row read into `T` by column name.
    async fn page<T>(
        &self,
        doing: &'static str,
        sql: &str,
        strategy: &str,
        q: &PageQuery,
    ) -> Result<Vec<T>, StoreError>
    where
        T: Send
            + Unpin
            + for<'r> sqlx::FromRow<'r, sqlx::sqlite::SqliteRow>
            + for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        let rows = on_pool!(self, pool => sqlx::query_as::<_, T>(sqlx::AssertSqlSafe(sql))
            .bind(strategy)
            .bind(q.symbol.as_deref())
            .bind(q.from.unwrap_or(i64::MIN))
            .bind(q.to.unwrap_or(i64::MAX))
            .bind(q.limit.unwrap_or(100))
            .bind(q.offset.unwrap_or(0))
            .fetch_all(pool)
            .await
            .map_err(self.err(doing))?);
        Ok(rows)
    }

    /// The assistants' current vote weights, by assistant.
    pub async fn weights(&self, strategy: &str) -> Result<Vec<StoredWeight>, StoreError> {
        let rows = on_pool!(self, pool => sqlx::query_as("SELECT assistant, weight, updated_at FROM assistant_weights WHERE strategy = $1 ORDER BY assistant")
            .bind(strategy)
            .fetch_all(pool)
            .await
            .map_err(self.err("reading weights"))?);
        Ok(rows)
    }

    /// Positions and the latest portfolio snapshot.
    pub async fn portfolio(&self, strategy: &str) -> Result<StoredPortfolio, StoreError> {
        let positions = on_pool!(self, pool => sqlx::query_as("SELECT symbol, quantity, entry_price, updated_at FROM positions WHERE strategy = $1 ORDER BY symbol")
            .bind(strategy)
            .fetch_all(pool)
            .await
            .map_err(self.err("reading positions"))?);
        // the latest point of the equity curve
        let latest = self.equity_curve(strategy, 1).await?.pop();
        Ok(StoredPortfolio { positions, latest })
    }

    /// Replaces the positions and adds a portfolio snapshot.
    pub async fn save_portfolio(
        &self,
        strategy: &str,
        at: i64,
        equity: &str,
        cash: &str,
        positions: &[(String, String, String)],
    ) -> Result<(), StoreError> {
        on_pool!(self, pool => {
            let mut tx = pool.begin().await.map_err(self.err("starting a transaction"))?;
            sqlx::query("DELETE FROM positions WHERE strategy = $1").bind(strategy).execute(&mut *tx).await.map_err(self.err("storing positions"))?;
            for (symbol, quantity, entry) in positions {
                sqlx::query("INSERT INTO positions (strategy, symbol, quantity, entry_price, updated_at) VALUES ($1, $2, $3, $4, $5)")
                    .bind(strategy).bind(symbol.as_str()).bind(quantity.as_str()).bind(entry.as_str()).bind(at)
                    .execute(&mut *tx).await.map_err(self.err("storing positions"))?;
            }
            sqlx::query("INSERT INTO portfolio (strategy, at, equity, cash) VALUES ($1, $2, $3, $4) ON CONFLICT (strategy, at) DO UPDATE SET equity = excluded.equity, cash = excluded.cash")
                .bind(strategy).bind(at).bind(equity).bind(cash)
                .execute(&mut *tx).await.map_err(self.err("storing the portfolio"))?;
            tx.commit().await.map_err(self.err("committing"))?;
        });
        Ok(())
    }
}

/// Tables [`Store::count`] can count.
#[derive(Debug, Clone, Copy)]
pub enum Table {
    /// `decisions`: one row per decision.
    Decisions,
    /// `opinions`: one row per opinion of every round (a view over the decisions' transcripts).
    Opinions,
    /// `orders`: one row per order, keyed by decision id.
    Orders,
    /// `audit_log`: the hash-chained entries.
    AuditLog,
    /// `assistant_weights`: the latest learned vote weight of each assistant.
    AssistantWeights,
}

/// A decision's audit payload: the figures a reader wants to see, and its row's digest. The chain
/// hashes these bytes, so the fields serialise in this order whatever features serde_json is built
/// with: never reorder them.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct DecisionAudit<'a> {
    id: &'a protocol::ids::DecisionId,
    symbol: &'a str,
    action: protocol::Action,
    confidence: f64,
    consensus_reached: bool,
    escalated: bool,
    vetoed: bool,
    rounds: usize,
    price: f64,
    digest: String,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    rejected: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    resolved_by: Option<&'a str>,
}

/// An order's audit payload: the order, its fill (`null` when none), status, reason and row
/// digest, in this order (see [`DecisionAudit`]).
#[derive(serde::Serialize)]
struct OrderAudit<'a> {
    order: &'a protocol::messages::Order,
    fill: &'a Option<protocol::messages::Fill>,
    status: protocol::messages::OrderStatus,
    reason: &'a str,
    digest: String,
}

/// The audit entries of the rows just stored (`new_*`), decisions first: each commits to its row's
/// digest, beside the figures a reader wants to see.
fn audit_entries(
    chain: &mut AuditChain,
    decisions: &[Decision],
    decision_rows: &[DecisionRow],
    new_decisions: &std::collections::HashSet<String>,
    orders: &[OrderRecord],
    order_rows: &[OrderRow],
    new_orders: &std::collections::HashSet<String>,
) -> Vec<AuditEntry> {
    let mut audit = Vec::with_capacity(new_decisions.len() + new_orders.len());
    for (d, row) in decisions.iter().zip(decision_rows) {
        if !new_decisions.contains(d.id.as_str()) {
            continue;
        }
        let payload = DecisionAudit {
            id: &d.id,
            symbol: &d.symbol,
            action: d.action,
            confidence: d.confidence,
            consensus_reached: d.consensus_reached,
            escalated: d.escalated,
            vetoed: d.vetoed,
            rounds: d.rounds.len(),
            price: d.price,
            digest: row.digest(),
            rejected: d.rejected,
            resolved_by: d.resolved_by.as_deref(),
        };
        audit.push(chain.append(d.decided_at, "decision", &d.id, json_of(&payload)));
    }
    for (o, row) in orders.iter().zip(order_rows) {
        if !new_orders.contains(o.order.decision_id.as_str()) {
            continue;
        }
        let payload = OrderAudit {
            order: &o.order,
            fill: &o.fill,
            status: o.status,
            reason: &o.reason,
            digest: row.digest(),
        };
        audit.push(chain.append(o.order.at, "order", &o.order.decision_id, json_of(&payload)));
    }
    audit
}

/// `value` as JSON text; what the store writes is plain data, which always serialises.
fn json_of(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).expect("plain data serialises")
}

/// One round's tally as the `votes` column holds it: the scores without the individual votes
/// (those are in the transcript, with their weight). Serialised in this order (the row digest
/// hashes it).
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct StoredRound<'a> {
    round: u32,
    scores: &'a std::collections::BTreeMap<protocol::Action, f64>,
    answered_weight: f64,
    total_weight: f64,
}

/// Every round's tally of `d`, as a JSON array.
fn round_scores(d: &Decision) -> String {
    let rounds: Vec<StoredRound> = d
        .rounds
        .iter()
        .map(|r| StoredRound {
            round: r.round,
            scores: &r.scores,
            answered_weight: r.answered_weight,
            total_weight: r.total_weight,
        })
        .collect();
    json_of(&rounds)
}

/// One opinion as the `transcript` column holds it (the `opinions` view's columns, less those the
/// decision row already has: strategy, decision id, symbol).
#[derive(serde::Serialize)]
struct StoredOpinion<'a> {
    round: u32,
    assistant: &'a str,
    role: &'a str,
    action: &'a str,
    confidence: f64,
    weight: f64,
    reasoning: &'a str,
    evidence: &'a protocol::messages::Evidence,
    veto: bool,
    llm: bool,
}

/// The debate of a decision, every round's opinions in order, as a JSON array.
fn transcript(d: &Decision) -> String {
    let opinions: Vec<StoredOpinion> = d
        .transcript
        .iter()
        .map(|o| StoredOpinion {
            round: o.round,
            assistant: &o.assistant,
            role: o.role.as_str(),
            action: o.action.as_str(),
            confidence: o.confidence,
            weight: vote_weight(d, o),
            reasoning: &o.reasoning,
            evidence: &o.evidence,
            veto: o.veto,
            llm: o.llm,
        })
        .collect();
    serde_json::to_string(&opinions).expect("opinions serialize")
}

/// The weight an opinion's vote carried, from its round's tally (0 when it was not counted).
fn vote_weight(d: &Decision, o: &protocol::messages::Opinion) -> f64 {
    d.rounds
        .iter()
        .find(|r| r.round == o.round)
        .and_then(|r| r.votes.iter().find(|v| v.assistant == o.assistant))
        .map_or(0.0, |v| v.weight)
}

fn side(s: protocol::messages::Side) -> &'static str {
    match s {
        protocol::messages::Side::Buy => "BUY",
        protocol::messages::Side::Sell => "SELL",
    }
}

fn kind(k: protocol::messages::OrderKind) -> &'static str {
    match k {
        protocol::messages::OrderKind::Market => "MARKET",
        protocol::messages::OrderKind::Limit => "LIMIT",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_lose_their_credentials_in_messages() {
        assert_eq!(
            redact("postgres://ia:s3cret@db:5432/ia"),
            "postgres://***@db:5432/ia"
        );
        assert_eq!(redact("sqlite:///tmp/x.db"), "sqlite:///tmp/x.db");
    }
}
