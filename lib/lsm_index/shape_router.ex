defmodule LsmIndex.ShapeRouter do
  @moduledoc """
  Routes the WAL changes of one table to the shapes they affect, in one NIF call per change
  (or per transaction with `route_many/2`).

      {:ok, router} =
        LsmIndex.ShapeRouter.new("tenant-1", {"public", "todos"},
          [{"id", :int8}, {"user_id", :int8}, {"status", :text}])

      :ok = LsmIndex.ShapeRouter.add_shape(router, 1, "user_id = 7 AND status <> 'done'")
      [1] = LsmIndex.ShapeRouter.route(router, {:insert, %{"id" => "1", "user_id" => "7", "status" => "open"}})

  Inside (Rust, `lsm_index_core::router`): each shape's WHERE is parsed and compiled once; its
  most selective equality conjunct (`col = v`, `col IN (…)`, or an `OR` of those on one column)
  puts it in an equality index (an `LsmIndex` keyed by column and value) behind a presence
  filter, and the rest of the clause is bytecode run on the index's candidates. Without such
  a conjunct, a shape whose ORs carry an equality in every branch is indexed under each
  branch's equality (`(a = 1 AND x > 2) OR b = 5`) and its whole clause checked on candidates;
  the others are evaluated on every change. See `DESIGN.md`.

  Semantics (the same as `LsmIndex.Filter`): records map column names to Postgres text or
  `nil`; a shape matches a row when its WHERE is true (SQL three-valued logic); an update
  affects the shapes matching the old or the new row (a shape none of whose columns changed is
  evaluated once); a value that does not parse for its column's type (or is not UTF-8) routes
  to every shape found through that column and to every shape reading it that the row's other
  values do not rule out (a candidate, or scanned: see `LsmIndex.Filter`); `:truncate`
  affects every shape. Only the columns some shape refers to are read, and only as a route
  needs them: a change no shape is indexed on reads only the indexed columns (of both
  records of an update, compared), a candidate's residual reads its own. A value read is
  checked (text or `nil`); a column a record lacks is NULL, other keys are ignored.

  Scheduling: `route/2` runs on a normal scheduler; `route_many/2` routes for ~0.5 ms per NIF
  call and continues with the rest of the list in the next call. A router with more than
  1,000 shapes without an indexable conjunct (each evaluated on every change) routes on dirty
  CPU schedulers. Shape changes that would wait (a busy index, a persistent router's file,
  clauses over 16 KiB) and `add_column/3` run on dirty schedulers. With `:telemetry` loaded,
  `route_many/3` and one in 100 `route/2` calls are `[:lsm_index, :route, ...]` spans
  (`LsmIndex.Telemetry`). The table gains columns with `add_column/3` (`ALTER TABLE … ADD
  COLUMN`); `columns/1` lists them.

  Errors: caller mistakes (bad options or columns, a malformed change, a closed router) raise
  `ArgumentError`; operational failures are returned as `{:error, reason}`, and `new!/4`,
  `open!/5`, `add_shape!/3`, `add_column!/3`, `flush!/1` and `close!/1` raise them as
  `LsmIndex.Error`.

  ## Subquery shapes

  `new/3` with a map `%{{schema, table} => columns}` makes a router over several tables whose
  shapes may test subqueries (`project_id IN (SELECT id FROM projects WHERE owner_id = $1)`,
  `NOT IN`, `(a, b) IN (SELECT …)`, `= ANY (SELECT …)`, `<> ALL (SELECT …)`, chains of nested
  subqueries). Shape ids are any term. `add_shape/4` takes `table: {schema, table}` and
  `subquery_values:` — per subquery, in the textual order of their `SELECT`s, the rows
  PostgreSQL returned for it in the shape's snapshot (text or `nil`; a list per row for a
  composite subquery; link rows for a subquery holding a nested one, see `seed_queries/3`), or
  `:current` (the router's view as it is: no values). Changes name their table
  (`{:insert, table, rec}`, `{:update, table, old, new}`, `{:delete, table, rec}`,
  `{:truncate, table}`). A change of a table some subquery reads updates the views: route each
  change exactly once, in stream order. `route_with_moves/2` and `route_many(r, changes, moves:
  true)` give the moves, `{id, :move_in | :move_out, position, values}` with `values` a sorted
  list of PostgreSQL text (`nil`: the rows whose tested column is NULL) or `:all`: on a
  move-in query the shape's rows with those values, on a move-out re-check (or drop) the
  rows holding them. NULLs follow PostgreSQL (`NOT IN` with a NULL in the result is NULL).
  Options: `:index`, `:lc_ctype`, and `:path` (a directory: persistent — `flush/2` with a
  `position:` keeps shapes and views, and a reopen is as of the last flush; see
  `position/1`). README: usage; DESIGN: how views are shared and derived.

  ## Options (`new/4`)

    * `:index` - options of the shape index, as for `LsmIndex.new/1` (default `[]`)
    * `:path` - a directory: the router is persistent. Its shapes (and added columns) are
      kept in a catalog file there (`shapes.log`), loaded again by the next `new/4` with that
      path; `close/1` also writes a snapshot (`router.snap`), from which that open restores
      it with the catalog's later records (~0.5 s per million shapes of a few templates on a
      2-core VM; ~4–5 s per million compiling the whole catalog without one). `{:error,
      :locked}` while another router has it open. The columns given must be the table's
      (those it was made with and added, then maybe more: added now); others are refused.
    * `:sync` - when a persistent router's shape changes reach the disk: `:flush` (default)
      at `flush/1` (or `close/1`), `:always` before each `add_shape`/`remove_shape` returns,
      `:none` never by us (the OS writes them out; a VM crash loses nothing, a machine crash
      may). Shape changes of a persistent router run on dirty I/O schedulers.
  """

  alias LsmIndex.Native
  alias LsmIndex.ShapeRouter.{OneTable, Packed, Tables}

  # `columns`: the names a router over one table was made with (`columns/1`: as they are now)
  defstruct [:ref, :tenant, :table, persistent: false, tables: nil, columns: nil]

  @typedoc "A router."
  @type t :: %__MODULE__{
          ref: reference(),
          tenant: term(),
          table: term(),
          persistent: boolean(),
          tables: %{optional({String.t(), String.t()}) => non_neg_integer()} | nil,
          columns: [String.t()] | nil
        }
  @typedoc "A shape id: a non-negative integer below 2^32, unique per router."
  @type shape_id :: 0..4_294_967_295
  @typedoc "A row: column name => Postgres text, or `nil` for NULL."
  @type record :: %{optional(String.t()) => String.t() | nil}
  @typedoc "A subquery's rows moving into or out of a shape (see the module doc)."
  @type move ::
          {term(), :move_in | :move_out, non_neg_integer(),
           :all | [String.t() | nil | [String.t() | nil]]}
  @typedoc "A WAL change of the router's table."
  @type change ::
          {:insert, record()} | {:delete, record()} | {:update, record(), record()} | :truncate

  @one_table_shapes "add_shapes/2 is for a router over one table: use add_shape/4 with table:"
  @one_table_columns "a router over several tables has the columns it was made with"
  @no_packed "a router over several tables routes lists of changes (route_many/3): " <>
               "packed changes are one table's"

  @doc """
  A router for `table` of `tenant` with `columns` (`[{name, type}]`, types as in
  `LsmIndex.Filter.ColumnType`). `tenant` and `table` label it (in `metrics/1`).

  Options: `:index` (`LsmIndex` options of its shape index), `:path` (a directory: a
  persistent router, see `open/5`), `:sync` (`:flush`, `:always`, `:none`), and `:lc_ctype`:
  how `lower`, `upper` and `ILIKE` fold case, as PostgreSQL does under the database's
  `LC_CTYPE` — `:utf8` (default: every character, one to one) or `:c` (ASCII letters only). A
  persistent router remembers it: reopening with another is refused.
  """
  @spec new(term(), term(), LsmIndex.Where.columns(), keyword()) ::
          {:ok, t()} | {:error, term()}
  def new(tenant, table, columns, opts \\ [])

  def new(tenant, tables, opts, []) when is_map(tables) and is_list(opts),
    do: Tables.new(tenant, tables, opts)

  def new(tenant, table, columns, opts), do: OneTable.new(tenant, table, columns, opts)

  @doc "`new/4`, returning the router or raising `LsmIndex.Error`."
  @spec new!(term(), term(), LsmIndex.Where.columns(), keyword()) :: t()
  def new!(tenant, table, columns, opts \\ []),
    do: tenant |> new(table, columns, opts) |> LsmIndex.Error.unwrap!()

  @doc """
  Opens the persistent router in directory `path`, creating it if needed: `new/4` with
  `path: path` (`opts` as for `new/4`, without `:path`).
  """
  @spec open(Path.t(), term(), term(), LsmIndex.Where.columns(), keyword()) ::
          {:ok, t()} | {:error, term()}
  def open(path, tenant, table, columns, opts \\ [])

  def open(path, tenant, table, columns, opts) when is_binary(path) and path != "" do
    if Keyword.keyword?(opts) and Keyword.has_key?(opts, :path),
      do: raise(ArgumentError, "open/5 takes the directory as its first argument, not :path")

    new(tenant, table, columns, [path: path] ++ opts)
  end

  def open(path, _tenant, _table, _columns, _opts),
    do: raise(ArgumentError, "expected a directory path (a string), got: #{inspect(path)}")

  @doc "`open/5`, returning the router or raising `LsmIndex.Error` (`reason: :locked`, ...)."
  @spec open!(Path.t(), term(), term(), LsmIndex.Where.columns(), keyword()) :: t()
  def open!(path, tenant, table, columns, opts \\ []),
    do: path |> open(tenant, table, columns, opts) |> LsmIndex.Error.unwrap!()

  @doc "Makes every shape change so far durable (persistent routers; `:ok` in memory)."
  @spec flush(t()) :: :ok | {:error, term()}
  def flush(%__MODULE__{tables: nil} = router), do: OneTable.flush(router)
  def flush(%__MODULE__{persistent: false}), do: :ok
  def flush(router), do: flush(router, position: "")

  @doc """
  A persistent router over several tables: makes every shape and view change so far durable
  together with `position:` (a binary: the caller's stream position, e.g. an LSN), which
  `position/1` returns after a reopen. The router reopens exactly as of its last flush: the
  caller resumes its stream there and redoes the shape changes it made after it. `:ok` in
  memory.
  """
  @spec flush(t(), keyword()) :: :ok | {:error, term()}
  def flush(%__MODULE__{tables: nil} = router, _opts), do: flush(router)
  def flush(%__MODULE__{persistent: false}, _opts), do: :ok

  def flush(router, opts) do
    position = Keyword.validate!(opts, position: "")[:position]
    Tables.flush(router, position)
  end

  @doc """
  The position given to the last `flush/2` of a persistent router over several tables, as
  it was reopened or flushed since (`nil`: never flushed, or in memory).
  """
  @spec position(t()) :: binary() | nil
  def position(%__MODULE__{tables: nil}),
    do: raise(ArgumentError, "a router over one table keeps no stream position")

  def position(router), do: Tables.position(router)

  @doc "`flush/1`, raising `LsmIndex.Error` when the catalog cannot be synced."
  @spec flush!(t()) :: :ok
  def flush!(router), do: router |> flush() |> LsmIndex.Error.unwrap!()

  @doc """
  A router over one table: flushes, writes its snapshot (persistent: see `:path`) and
  releases the directory; later calls raise
  `ArgumentError` (closing again is `:ok`). A persistent router over several tables: releases
  the directory without a flush (what came after the last `flush/2` is not kept, as after a
  crash: its position is where a reopen resumes); the router stays usable in memory, and
  `flush/2` then answers `{:error, _}`. `:ok` for one in memory.
  """
  @spec close(t()) :: :ok | {:error, term()}
  def close(%__MODULE__{tables: nil, ref: ref}), do: Native.router_close(ref)
  def close(router), do: Tables.close(router)

  @doc "`close/1`, raising `LsmIndex.Error` when the final flush fails."
  @spec close!(t()) :: :ok
  def close!(router), do: router |> close() |> LsmIndex.Error.unwrap!()

  @doc "Waits until the shape index's background compaction is idle (benchmarks, tests)."
  @spec wait_idle(t()) :: :ok | {:error, term()}
  def wait_idle(%__MODULE__{ref: ref, tables: nil}), do: Native.router_wait_idle(ref)
  def wait_idle(%__MODULE__{ref: ref}), do: Native.router_set_wait_idle(ref)

  @doc """
  `add_shape/3`, raising `LsmIndex.Error` instead of returning `{:error, reason}` (a clause
  that does not parse: `reason: {:invalid_where, byte_offset, message}`).
  """
  @spec add_shape!(t(), shape_id(), String.t(), keyword()) :: :ok
  def add_shape!(router, shape_id, where_sql, opts \\ []),
    do: router |> add_shape(shape_id, where_sql, opts) |> LsmIndex.Error.unwrap!()

  @doc """
  Adds shape `shape_id` with WHERE clause `where_sql`, replacing the shape with that id if
  there is one. `{:error, {:invalid_where, byte_offset, message}}` when the clause does not
  parse or does not fit the columns (then the router is unchanged). With
  `index: [overload: :error]`, `{:error, :overloaded}` when the shape index is full while
  compaction catches up: the shape was not added (a shape it would have replaced is gone).

  Options:

    * `:params` - the values of `$1`, `$2`, ... in the clause: strings (PostgreSQL text,
      typed by where each is used, as an untyped literal would be) or `nil` for NULL.
      Default `[]`.
  """
  @spec add_shape(t(), shape_id(), String.t(), keyword()) :: :ok | {:error, term()}
  def add_shape(router, shape_id, where_sql, opts \\ [])

  def add_shape(%__MODULE__{tables: tables} = router, shape_id, where_sql, opts)
      when tables != nil,
      do: Tables.add_shape(router, shape_id, where_sql, opts)

  def add_shape(%__MODULE__{} = router, shape_id, where_sql, opts),
    do: OneTable.add_shape(router, shape_id, where_sql, opts)

  @doc """
  Adds many shapes in one call, as `add_shape/4` one after the other would (a later entry
  with an id replaces an earlier one): each entry is `{shape_id, where_sql}` or
  `{shape_id, where_sql, params}` (`params` as `add_shape/4`'s option). Runs on a dirty
  scheduler; the clauses are compiled on up to 8 threads of the call's own, joined before it
  returns. `:ok`, or `{:error, {shape_id, reason}}` for the first entry refused (`reason` as
  `add_shape/4` gives it): the entries before it are added, none after. A router over one
  table only (one over several adds with `add_shape/4`, which takes `table:`).
  """
  @spec add_shapes(t(), [{shape_id(), String.t()} | {shape_id(), String.t(), [String.t() | nil]}]) ::
          :ok | {:error, {shape_id(), term()}}
  def add_shapes(%__MODULE__{tables: nil} = router, shapes),
    do: OneTable.add_shapes(router, shapes)

  def add_shapes(%__MODULE__{}, _shapes), do: raise(ArgumentError, @one_table_shapes)

  @doc """
  What to query for the snapshot of each subquery of a shape (a router over several
  tables): `{:ok, [{position, sql, :result | :links}]}`. Run each `sql` in the snapshot the
  shape starts from and pass the rows, by position, as `add_shape/4`'s `:subquery_values`.
  `:result` is the subquery itself; `:links` is a subquery holding a nested one: its rows are
  `[y…, x…]` (the columns it tests against the nested subquery, then those it selects) of
  the rows where the rest of its WHERE holds. `{:error, {:invalid_where, offset, message}}`
  when the clause is refused. Options: `:table` (required), `:params`.
  """
  @spec seed_queries(t(), String.t(), keyword()) ::
          {:ok, [{non_neg_integer(), String.t(), :result | :links}]} | {:error, term()}
  def seed_queries(%__MODULE__{tables: nil}, _sql, _opts),
    do: raise(ArgumentError, "a router over one table has no subqueries")

  def seed_queries(router, sql, opts), do: Tables.seed_queries(router, sql, opts)

  @doc """
  Appends column `name` of type `type` (as `new/4` takes them) to the table, as PostgreSQL's
  `ALTER TABLE … ADD COLUMN` does (its Relation message lists the table's columns, the new
  one last). Later shapes may refer to it; routes read it, NULL where a record lacks it or a
  row was packed before it. A persistent router records it (reopen it with the table's
  columns: fewer are refused, more are added). `:ok` also when the table has it with that
  type (a message seen again), `{:error, {:column_type_conflict, name, type_there}}` with
  another. Raises `ArgumentError` for a name or type the table cannot take (empty, a NUL,
  1,600 columns, an enum name another column has with other labels), or a router over
  several tables (their columns are fixed).
  """
  @spec add_column(t(), String.t(), LsmIndex.Filter.ColumnType.t()) :: :ok | {:error, term()}
  def add_column(%__MODULE__{tables: nil} = router, name, type),
    do: OneTable.add_column(router, name, type)

  def add_column(%__MODULE__{}, _name, _type), do: raise(ArgumentError, @one_table_columns)

  @doc "`add_column/3`, raising `LsmIndex.Error` instead of returning `{:error, reason}`."
  @spec add_column!(t(), String.t(), LsmIndex.Filter.ColumnType.t()) :: :ok
  def add_column!(router, name, type),
    do: router |> add_column(name, type) |> LsmIndex.Error.unwrap!()

  @doc """
  The table's columns now, in order (`new/4`'s, then those `add_column/3` added): `[{name,
  type}]`, the types as the router reads them (`:varchar` is `:text`).
  """
  @spec columns(t()) :: [{String.t(), LsmIndex.Filter.ColumnType.t()}]
  def columns(%__MODULE__{tables: nil} = router), do: OneTable.columns(router)
  def columns(%__MODULE__{}), do: raise(ArgumentError, @one_table_columns)

  @doc "Removes shape `shape_id` (an unknown id is fine)."
  @spec remove_shape(t(), shape_id()) :: :ok
  def remove_shape(%__MODULE__{tables: tables} = router, shape_id) when tables != nil,
    do: Tables.remove_shape(router, shape_id)

  def remove_shape(%__MODULE__{} = router, shape_id), do: OneTable.remove_shape(router, shape_id)

  @doc "The sorted ids of the shapes `change` affects."
  @spec route(t(), change()) :: [shape_id()]
  def route(router, change), do: LsmIndex.Telemetry.route(router, change, &routed/2)

  defp routed(%__MODULE__{tables: tables} = router, change) when tables != nil,
    do: router |> Tables.route_with_moves(change) |> elem(0)

  defp routed(%__MODULE__{} = router, change), do: OneTable.route(router, change)

  @doc """
  The ids a change affects and the moves it makes: `{ids, moves}`, a move being
  `{shape_id, :move_in | :move_out, position, values}` (see "Subquery shapes" in the module
  doc). A router over one table has no subqueries: its moves are always `[]`.
  """
  @spec route_with_moves(t(), change()) :: {[shape_id()], [move()]}
  def route_with_moves(router, change),
    do: LsmIndex.Telemetry.route(router, change, &routed_with_moves/2)

  defp routed_with_moves(%__MODULE__{tables: nil} = router, change),
    do: {routed(router, change), []}

  defp routed_with_moves(router, change), do: Tables.route_with_moves(router, change)

  @doc """
  `route/2` of each change, in order: one transaction in as few NIF calls as fit. With
  `moves: true`, `route_with_moves/2` of each change.

  With `keep: true` (a router over one table), `{ids, kept}` for each change: `kept` the
  sorted ids of `ids` whose WHERE holds on the row after the change — an insert's all, a
  delete's and a truncate's none, an update's those its new row matches (what routing the
  new row alone as an insert would say, from the one route). For an update, `kept` is where
  the row is now (an update, or a move into the shape) and `ids -- kept` where it left (a
  move out).
  """
  @spec route_many(t(), [change()], keyword()) ::
          [[shape_id()]] | [{[shape_id()], [move()]}] | [{[shape_id()], [shape_id()]}]
  def route_many(router, changes, opts \\ []) do
    LsmIndex.Telemetry.route_many(router, changes, fn -> routed_many(router, changes, opts) end)
  end

  defp routed_many(%__MODULE__{} = router, changes, opts) when is_list(changes) do
    opts = Keyword.validate!(opts, moves: false, keep: false)
    # nil is false (as it always was for moves)
    {moves, keep} = {opts[:moves] || false, opts[:keep] || false}

    unless is_boolean(moves) and is_boolean(keep),
      do: raise(ArgumentError, "route_many/3: moves and keep are true, false or nil")

    case router do
      %{tables: nil} when keep == true and moves == true ->
        raise ArgumentError, "route_many/3: keep: true and moves: true are not taken together"

      %{tables: nil} when keep == true ->
        OneTable.route_many(router, changes, true)

      %{tables: nil} ->
        ids = OneTable.route_many(router, changes)
        if moves, do: Enum.map(ids, &{&1, []}), else: ids

      _ when keep == true ->
        raise ArgumentError,
              "route_many/3: keep: true is for a router over one table (a change to a table " <>
                "a subquery reads moves rows: use moves: true)"

      _ ->
        both = Tables.route_many(router, changes)
        if moves, do: both, else: Enum.map(both, &elem(&1, 0))
    end
  end

  defp routed_many(%__MODULE__{}, changes, _opts),
    do: raise(ArgumentError, "changes must be a list, got: #{inspect(changes)}")

  @doc """
  `changes` (as `route_many/2` takes them) packed into one binary for `route_many_packed/2`:
  per change its op and its rows, every row all of the table's columns now (`columns/1`),
  in order (a column a record lacks is NULL). Raises `ArgumentError` for a malformed change
  or a value that is not text or `nil` in any column (`route_many/2` checks only the values
  a route reads). The layout is stable, so a WAL decoder may write it itself
  (`lsm_index_core::packed_changes`, DESIGN.md "Packed changes"):

      width::32-little, count::32-little, then per change ?I row | ?D row | ?U old new | ?T
      row = per column: byte_size(text)::32-little | 0xFFFFFFFF (NULL); then the texts

  A router over several tables has no packed form.
  """
  @spec pack_changes(t(), [change()]) :: binary()
  def pack_changes(%__MODULE__{tables: nil} = router, changes),
    do: router |> OneTable.column_names() |> Packed.pack(changes)

  def pack_changes(%__MODULE__{}, _changes), do: raise(ArgumentError, @no_packed)

  @doc """
  `route_many/2` of the changes `packed` holds (`pack_changes/2`): the same answers, in as
  few NIF calls as fit ~0.5 ms each; the NIF reads the rows in place and routes them in
  batches, no term per change but its answer. A binary packed before columns were added
  (`add_column/3`) is read with them NULL. Raises `ArgumentError` for a malformed binary
  (with its byte offset) or one packed for another column count.
  """
  @spec route_many_packed(t(), binary()) :: [[shape_id()]]
  def route_many_packed(%__MODULE__{tables: nil, ref: ref} = router, packed) do
    LsmIndex.Telemetry.route_many(router, packed, fn -> Packed.route(ref, packed) end)
  end

  def route_many_packed(%__MODULE__{}, _packed), do: raise(ArgumentError, @no_packed)

  @doc """
  Counters: `changes_routed`, `mean_route_ns`, `p50_route_ns`, `p99_route_ns` (per change,
  histogram upper bounds, <= 25% over), `presence_probes`, `presence_passes`,
  `presence_hit_rate`, `presence_false_positives`, `prefilter_false_positive_rate`,
  `candidates`, `candidates_per_change`, `predicate_evaluations`, `unparseable_rows`,
  `evaluation_errors` (evaluations PostgreSQL would have raised an error on, such as an
  overflow or a division by zero: the change was routed to the shape, as it could match),
  `evaluations_saved` (candidates whose group's residual ran once for them all),
  `shapes_indexed` and how they are found: `shapes_by_equality`, `shapes_by_range` (a range
  of a column, or a `LIKE 'prefix%'`), `shapes_by_literal` (a LIKE literal, `'%bug%'`),
  `shapes_by_view` (a subquery's view); `groups` (equal shapes, evaluated once per row) and
  `templates` (distinct compiled forms); `shapes_scanned`, and why those are scanned:
  `scanned_no_equality` (no condition an index serves: no equality, range or LIKE),
  `scanned_pattern_without_literal` (only a LIKE without a literal to find it by, or a
  negated one: `t LIKE '___'`, `t NOT LIKE 'a%'`), `scanned_or_branch_without_equality` (an
  OR with a branch lacking one), `scanned_constant` (`TRUE`, ...), `scanned_negated_subquery`
  (a `NOT IN (SELECT …)` and nothing to index), `scanned_stale_snapshot` (found only through
  a subquery whose snapshot held values the shared view lacks); plus `tenant` and `table`.

  Two kinds: `shapes_*`, `scanned_*`, `groups` and `templates` count the shapes the router
  holds now (removing a shape lowers them); every other counter is cumulative since the
  router was made (or opened: a persistent router starts again from 0), and the rates, the
  mean and the percentiles are over that same span.
  """
  @spec metrics(t()) :: map()
  def metrics(%__MODULE__{tables: nil, ref: ref, tenant: tenant, table: table}) do
    ref |> Native.router_metrics() |> Map.merge(%{tenant: tenant, table: table})
  end

  def metrics(%__MODULE__{} = router), do: Tables.metrics(router)

  @doc "`metrics/1` of one table of a router over several tables."
  @spec metrics(t(), {String.t(), String.t()}) :: map()
  def metrics(%__MODULE__{tables: tables} = router, table) when tables != nil,
    do: Tables.metrics(router, table)

  @doc """
  The subquery views of a router over several tables: `views` (distinct subqueries, shared
  by every shape with the same one), `attachments` (shape occurrences reading them),
  `diff_entries` (values where a shape's snapshot differed from the shared view),
  `view_underflows` (deletes of rows a view never counted: a snapshot disagreed with the
  stream), and `view_index` (the `LsmIndex.stats/1` map of the index holding every view's
  values).
  """
  @spec view_metrics(t()) :: map()
  def view_metrics(%__MODULE__{tables: nil}),
    do: raise(ArgumentError, "a router over one table has no subquery views")

  def view_metrics(%__MODULE__{} = router), do: Tables.view_metrics(router)
end
