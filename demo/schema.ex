defmodule LsmIndex.Demo.Schema do
  @moduledoc """
  The demo's app schema: `users`, `projects` and `todos` with int8 keys, text, bool, uuid,
  timestamptz, numeric, int2 and an enum; every table `REPLICA IDENTITY FULL` (an update's
  old row is what routes it out of a shape). `demo_progress` holds the workload's counters
  and is not decoded. Not public API.

  `todos.notes` (nullable text) is stored out of line and uncompressed (`STORAGE
  EXTERNAL`): a value over ~2 kB is TOASTed. An update that leaves such a value alone does
  not carry it — pgoutput sends the column as unchanged TOAST (`'u'`), and the decoder
  takes it from the old row (which `REPLICA IDENTITY FULL` logs in full) — so the shapes on
  `notes` check that a long value that did not change still routes right.

  The workload may add columns while the stream runs (`added_columns/0`: `todos.tag`,
  `LsmIndex.Demo.Workload`'s `alter_at`); `columns/1` stays the schema as `ddl/0` creates it.
  """

  @statuses ["open", "in_progress", "blocked", "done"]

  @tables %{
    "users" => [
      {"id", :int8},
      {"email", :text},
      {"name", :text},
      {"active", :bool},
      {"created_at", :timestamptz}
    ],
    "projects" => [
      {"id", :int8},
      {"owner_id", :int8},
      {"name", :text},
      {"archived", :bool},
      {"budget", :numeric},
      {"created_at", :timestamptz}
    ],
    "todos" => [
      {"id", :int8},
      {"project_id", :int8},
      {"user_id", :int8},
      {"title", :text},
      {"status", {:enum, @statuses}},
      {"priority", :int2},
      {"done", :bool},
      {"estimate", :numeric},
      {"due_at", :timestamptz},
      {"created_at", :timestamptz},
      {"external_id", :uuid},
      {"notes", :text}
    ]
  }

  @added %{"todos" => [{"tag", :text}]}

  @doc "The routed tables' names, in the order they are created."
  @spec names() :: [String.t()]
  def names, do: ["users", "projects", "todos"]

  @doc """
  The columns of `table` as `ddl/0` creates it (`[{name, type}]`, types as in
  `LsmIndex.Filter.ColumnType`), in table order.
  """
  @spec columns(String.t()) :: LsmIndex.Where.columns()
  def columns(table), do: Map.fetch!(@tables, table)

  @doc """
  The columns the workload may add while the stream runs, by table, in the order it adds
  them (after the created ones): a Relation message's new column maps to its type here.
  """
  @spec added_columns() :: %{String.t() => LsmIndex.Where.columns()}
  def added_columns, do: @added

  @doc """
  Each routed table's columns as the database has them now (`session`: a `psql` session on
  it): the created ones, then any the workload added (typed by `added_columns/0`). What a
  resumed driver opens its routers with.
  """
  @spec columns_now(LsmIndex.Demo.Psql.t()) :: %{String.t() => LsmIndex.Where.columns()}
  def columns_now(session) do
    rows =
      LsmIndex.Demo.Psql.run(
        session,
        "SELECT table_name, column_name FROM information_schema.columns " <>
          "WHERE table_schema = 'public' ORDER BY table_name, ordinal_position;"
      )

    present = Enum.group_by(rows, &hd(String.split(&1, "|")), &List.last(String.split(&1, "|")))

    Map.new(names(), fn table ->
      known = columns(table)
      names = MapSet.new(known, &elem(&1, 0))
      added = Map.new(Map.get(@added, table, []))

      extra =
        for name <- Map.get(present, table, []), not MapSet.member?(names, name) do
          {name, Map.get(added, name) || raise("#{table}.#{name}: a column the demo cannot type")}
        end

      {table, known ++ extra}
    end)
  end

  @doc "The labels of the `todo_status` enum, in declaration order."
  @spec statuses() :: [String.t()]
  def statuses, do: @statuses

  @doc """
  The DDL: the enum, the tables (no foreign keys: a truncate empties one table), `notes`
  stored out of line, the indexes the consistency check's queries use, and `demo_progress`.
  """
  @spec ddl() :: String.t()
  def ddl do
    labels = Enum.map_join(@statuses, ", ", &"'#{&1}'")

    """
    CREATE TYPE todo_status AS ENUM (#{labels});
    CREATE TABLE users (id int8 PRIMARY KEY, email text NOT NULL, name text,
      active bool NOT NULL, created_at timestamptz NOT NULL);
    CREATE TABLE projects (id int8 PRIMARY KEY, owner_id int8, name text NOT NULL,
      archived bool NOT NULL, budget numeric, created_at timestamptz NOT NULL);
    CREATE TABLE todos (id int8 PRIMARY KEY, project_id int8, user_id int8, title text NOT NULL,
      status todo_status NOT NULL, priority int2 NOT NULL, done bool NOT NULL, estimate numeric,
      due_at timestamptz, created_at timestamptz NOT NULL, external_id uuid, notes text);
    ALTER TABLE todos ALTER COLUMN notes SET STORAGE EXTERNAL;
    ALTER TABLE users REPLICA IDENTITY FULL;
    ALTER TABLE projects REPLICA IDENTITY FULL;
    ALTER TABLE todos REPLICA IDENTITY FULL;
    CREATE INDEX ON users (lower(email));
    CREATE INDEX ON projects (owner_id);
    CREATE INDEX ON todos (user_id);
    CREATE INDEX ON todos (project_id);
    CREATE TABLE demo_progress (txns int8 NOT NULL, next_user int8 NOT NULL,
      next_project int8 NOT NULL, next_todo int8 NOT NULL);
    INSERT INTO demo_progress VALUES (0, 1, 1, 1);
    """
  end
end
