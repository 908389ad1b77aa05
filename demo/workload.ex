defmodule LsmIndex.Demo.Workload do
  @moduledoc """
  The demo's writer: a process with one `psql` session that commits the transactions of
  `LsmIndex.Demo.Transactions` (seeding, then a mix of inserts, updates that move rows
  between shapes, deletes and a truncate now and then), `batch` per round trip, until a
  count or a deadline is reached. Not public API. With a `rate` it holds that many
  transactions per second at most.

  Every transaction also writes `demo_progress` (transactions committed, next ids; a table
  the decoder does not read), so a restarted writer resumes where the committed ones ended:
  it reads the counters and the tables' ids back. It reports `{:workload, :progress, n}`
  after each round trip of `batch` transactions and `{:workload, :done, n}` at the end.

  With `alter_at` one transaction adds a column while the stream runs (`ALTER TABLE todos
  ADD COLUMN tag text`, `LsmIndex.Demo.Schema.added_columns/0`): the first after seeding
  whose number is at least `alter_at`; later transactions write `tag`. A restarted writer
  asks the catalog (`information_schema.columns`) whether `tag` exists, so it neither runs
  the ALTER twice nor writes the column before it exists.
  """

  alias LsmIndex.Demo.{Psql, Schema, Transactions}

  @doc """
  Starts the writer, linked to the caller, which receives its reports. Options: `seed`,
  `users`, `projects`, `todos` (rows seeded), `txns` (stop at this many committed
  transactions in all, seeding included; `nil`: no bound), `seconds` (stop after this long;
  `nil`: no bound), `truncate_every` (default 10,000; `nil`: never), `batch` (transactions
  per round trip, default 20), `rate` (transactions per second at most; `nil`: no bound),
  `alter_at` (the transaction, counted from the first, seeding included, that adds
  `todos.tag`; default `nil`: never).
  """
  @spec start_link(LsmIndex.Demo.Postgres.t(), String.t(), keyword()) :: pid()
  def start_link(pg, database, opts) do
    opts =
      Keyword.validate!(opts, [
        :seed,
        :users,
        :projects,
        :todos,
        txns: nil,
        seconds: nil,
        truncate_every: 10_000,
        batch: 20,
        rate: nil,
        alter_at: nil
      ])

    parent = self()
    spawn_link(fn -> init(parent, pg, database, opts) end)
  end

  defp init(parent, pg, database, opts) do
    session = Psql.open(pg, database)

    [progress] =
      Psql.run(session, "SELECT txns, next_user, next_project, next_todo FROM demo_progress;")

    [txns, next_user, next_project, next_todo] =
      progress |> String.split("|") |> Enum.map(&String.to_integer/1)

    bags =
      Map.new(Schema.names(), fn table ->
        ids = Psql.run(session, "SELECT id FROM #{table};")
        {table, Transactions.bag(Enum.map(ids, &String.to_integer/1))}
      end)

    tag? =
      Psql.run(session, """
      SELECT count(*) FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'todos' AND column_name = 'tag';
      """) == ["1"]

    deadline =
      if opts[:seconds], do: System.monotonic_time(:millisecond) + round(opts[:seconds] * 1000)

    state = %{
      session: session,
      parent: parent,
      opts: opts,
      rand: :rand.seed_s(:exsss, {opts[:seed], txns, 7}),
      txns: txns,
      next: %{"users" => next_user, "projects" => next_project, "todos" => next_todo},
      bags: bags,
      tag: tag?,
      deadline: deadline,
      started: {System.monotonic_time(:millisecond), txns}
    }

    loop(state)
  end

  defp loop(state) do
    if done?(state) do
      Psql.close(state.session)
      send(state.parent, {:workload, :done, state.txns})
    else
      n = batch_size(state)
      # one query for the batch: `\\;` joins statements without sending them (one round trip)
      {sql, state} =
        Enum.map_reduce(1..n, state, fn _, state -> Transactions.next(state, "\\;\n") end)

      Psql.run(state.session, [sql, ";\n"])
      send(state.parent, {:workload, :progress, state.txns})
      pace(state)
      loop(state)
    end
  end

  defp pace(%{opts: opts, started: {at, txns0}, txns: txns}) do
    if opts[:rate] do
      ahead = at + div((txns - txns0) * 1000, opts[:rate]) - System.monotonic_time(:millisecond)
      if ahead > 0, do: Process.sleep(ahead)
    end
  end

  defp done?(%{opts: opts, txns: txns, deadline: deadline}) do
    (opts[:txns] != nil and txns >= opts[:txns]) or
      (deadline != nil and System.monotonic_time(:millisecond) >= deadline)
  end

  defp batch_size(%{opts: opts, txns: txns}) do
    case opts[:txns] do
      nil -> opts[:batch]
      max -> min(opts[:batch], max - txns)
    end
  end
end
