defmodule LsmIndex.Demo.Transactions do
  @moduledoc """
  The writer's transactions as SQL, from a model of the tables (pure: no I/O; the
  `LsmIndex.Demo.Workload` process sends them). Not public API.

  Seeding first (users, then projects, then todos: 100 rows per transaction), then a mix by
  weight: todos inserted (30), status/priority updated (20), moved to another user or
  project (10), retitled (6), rescheduled (6), deleted (7), a project's todos re-prioritised
  in bulk (2); users updated (5: `active` flipped, the email's case), projects updated (5:
  archived flipped, owner, budget); users and projects inserted (3 + 2) and deleted (2 + 2);
  and every `truncate_every` transactions a `TRUNCATE` of projects, users, todos in turn.
  Every transaction ends by writing `demo_progress` (count and next ids). Values: quotes,
  backslashes, Greek and emoji in titles, timestamptz with `+05:30`/`-08` offsets, numerics
  with trailing zeros, NULLs; never `NaN`/`Infinity` (wal2json 2.5 loses them).

  TOAST: an inserted todo's `notes` is long (15%: 3–12 kB, stored out of line, see
  `LsmIndex.Demo.Schema`; written as `'urgent ' || repeat('filler ', n)`, so the SQL stays
  short), short (25%) or NULL; 3% of the todo updates rewrite `notes` (long, short or NULL
  alike), every other update — and every bulk re-prioritisation — leaves it alone, so
  PostgreSQL sends a long one as unchanged TOAST (pgoutput's `'u'`) and the decoder must
  take it from the old row. A long or short value starts with one of `urgent`, `later`,
  `idea`, `maybe`, `blocked` (sometimes capitalised), which the shapes on `notes` test.
  The values themselves (rows, titles, notes, emails, timestamps, budgets, estimates, tags)
  are drawn by `LsmIndex.Demo.Transactions.Values`.

  A column added mid-stream: with `alter_at` in `opts`, the first transaction after seeding
  whose number (`txns` once it commits) is at least `alter_at` is `ALTER TABLE todos ADD
  COLUMN tag text` alone (the progress update with it); from then on inserted todos set
  `tag` to `red`, `green`, `blue` or NULL and 5% of the todo updates change it. The model's
  `tag` says whether the column exists (a restarted writer reads it back from the
  catalog), so the ALTER runs once.
  """

  alias LsmIndex.Demo.Transactions.Values

  @seed_rows 100
  @add_tag "ALTER TABLE todos ADD COLUMN tag text"

  @doc """
  One transaction's SQL for `model` (a map with `opts`: the workload's, of which `users`,
  `projects`, `todos`, `truncate_every` and `alter_at` are read; `rand`, `txns`, `next`: the
  next id per table, `bags`: the live ids per table, `tag`: whether `todos.tag` exists,
  `false` when absent; other keys are kept) and the model after it: ids, counters and `tag`
  move as if it committed (psql stops on any error, and so does the demo). Each statement
  ends with `terminator`: `";\\n"`, or psql's `"\\\\;\\n"`, which sends the statements of several
  transactions to the server as one query (one round trip for a batch).
  """
  @spec next(map(), String.t()) :: {iodata(), map()}
  def next(state, terminator \\ ";\n") do
    {statements, state} = statements(state)
    state = %{state | txns: state.txns + 1}
    %{"users" => u, "projects" => p, "todos" => t} = state.next

    progress =
      "UPDATE demo_progress SET txns = #{state.txns}, next_user = #{u}, " <>
        "next_project = #{p}, next_todo = #{t}"

    statements = ["BEGIN" | statements] ++ [progress, "COMMIT"]
    {Enum.map(statements, &[&1, terminator]), state}
  end

  defp statements(%{opts: opts, next: next} = state) do
    every = opts[:truncate_every]

    cond do
      next["users"] <= opts[:users] ->
        seed(state, "users")

      next["projects"] <= opts[:projects] ->
        seed(state, "projects")

      next["todos"] <= opts[:todos] ->
        seed(state, "todos")

      opts[:alter_at] != nil and not tag?(state) and state.txns + 1 >= opts[:alter_at] ->
        {[@add_tag], Map.put(state, :tag, true)}

      every != nil and rem(state.txns + 1, every) == 0 ->
        truncate(state)

      true ->
        {x, rand} = :rand.uniform_s(100, state.rand)
        {k, rand} = :rand.uniform_s(3, rand)
        mixed(x, k, %{state | rand: rand})
    end
  end

  defp seed(state, table) do
    {rows, state} =
      Enum.map_reduce(1..@seed_rows, state, fn _, state -> new_row(state, table) end)

    {[insert(table, rows)], state}
  end

  defp truncate(state) do
    turn = div(state.txns + 1, state.opts[:truncate_every]) - 1
    table = Enum.at(["projects", "users", "todos"], rem(turn, 3))
    {["TRUNCATE #{table}"], put_in(state.bags[table], bag())}
  end

  # x: which kind (1..100), k: how many rows (1..3)
  defp mixed(x, k, state) do
    cond do
      x <= 30 -> insert_rows(state, "todos", k)
      x <= 50 -> update_todos(state, :status)
      x <= 60 -> update_todos(state, :move)
      x <= 66 -> update_todos(state, :title)
      x <= 72 -> update_todos(state, :schedule)
      x <= 79 -> delete_rows(state, "todos", min(k, 2))
      x <= 81 -> bulk_priority(state)
      x <= 86 -> update_user(state)
      x <= 91 -> update_project(state)
      x <= 94 -> insert_rows(state, "users", 1)
      x <= 96 -> insert_rows(state, "projects", 1)
      x <= 98 -> delete_rows(state, "users", 1)
      true -> delete_rows(state, "projects", 1)
    end
  end

  defp insert_rows(state, table, n) do
    {rows, state} = Enum.map_reduce(1..n, state, fn _, state -> new_row(state, table) end)
    {[insert(table, rows)], state}
  end

  defp insert(table, [row | _] = rows) do
    columns = row |> Enum.map(&elem(&1, 0)) |> Enum.join(", ")

    values =
      Enum.map_join(rows, ",\n  ", fn row ->
        "(" <> Enum.map_join(row, ", ", &elem(&1, 1)) <> ")"
      end)

    "INSERT INTO #{table} (#{columns}) VALUES\n  #{values}"
  end

  # {[{column, SQL literal}], state}: a fresh row with the table's next id
  defp new_row(state, table) do
    id = state.next[table]
    state = %{state | next: Map.put(state.next, table, id + 1)}
    state = put_in(state.bags[table], put(state.bags[table], id))
    r = state.rand
    {row, r} = Values.row(table, id, state.next, tag?(state), r)
    {row, %{state | rand: r}}
  end

  defp update_todos(state, kind) do
    case state.bags["todos"] do
      %{size: 0} ->
        insert_rows(state, "todos", 1)

      bag ->
        {n, r} = :rand.uniform_s(2, state.rand)

        {statements, r} =
          Enum.map_reduce(1..n, r, fn _, r ->
            {id, r} = random(bag, r)
            {set, r} = todo_change(kind, state, r)
            {set, r} = also_change(set, state, r)
            {"UPDATE todos SET #{set} WHERE id = #{id}", r}
          end)

        {statements, %{state | rand: r}}
    end
  end

  defp todo_change(:status, _state, r) do
    {status, r} = Values.status(r)
    {priority, r} = :rand.uniform_s(5, r)
    {"status = #{status}, done = #{Values.bool(status == "'done'")}, priority = #{priority}", r}
  end

  defp todo_change(:move, state, r) do
    {x, r} = :rand.uniform_s(2, r)

    if x == 1 do
      {user, r} = :rand.uniform_s(max(state.next["users"] - 1, 1), r)
      {"user_id = #{user}", r}
    else
      {project, r} = :rand.uniform_s(max(state.next["projects"] - 1, 1), r)
      {"project_id = #{project}", r}
    end
  end

  defp todo_change(:title, _state, r) do
    {title, r} = Values.title(r)
    {"title = #{title}", r}
  end

  defp todo_change(:schedule, _state, r) do
    {due, r} = Values.due(r)
    {estimate, r} = Values.estimate(r)
    {"due_at = #{due}, estimate = #{estimate}", r}
  end

  # 3% of the updates rewrite notes (the others leave a TOASTed value unchanged); once the
  # column exists, 5% change tag
  defp also_change(set, state, r) do
    {x, r} = :rand.uniform_s(100, r)
    {set, r} = if x <= 3, do: assign(set, "notes", Values.rewritten_notes(r)), else: {set, r}

    if tag?(state) do
      {x, r} = :rand.uniform_s(100, r)
      if x <= 5, do: assign(set, "tag", Values.tag(r)), else: {set, r}
    else
      {set, r}
    end
  end

  defp assign(set, column, {value, r}), do: {"#{set}, #{column} = #{value}", r}

  defp bulk_priority(state) do
    {project, r} = :rand.uniform_s(max(state.next["projects"] - 1, 1), state.rand)
    {priority, r} = :rand.uniform_s(5, r)

    {["UPDATE todos SET priority = #{priority} WHERE project_id = #{project}"],
     %{state | rand: r}}
  end

  defp update_user(state) do
    case state.bags["users"] do
      %{size: 0} ->
        insert_rows(state, "users", 1)

      bag ->
        {id, r} = random(bag, state.rand)
        {email, r} = Values.email(id, r)

        {["UPDATE users SET active = NOT active, email = #{email} WHERE id = #{id}"],
         %{state | rand: r}}
    end
  end

  defp update_project(state) do
    case state.bags["projects"] do
      %{size: 0} ->
        insert_rows(state, "projects", 1)

      bag ->
        {id, r} = random(bag, state.rand)
        {owner, r} = :rand.uniform_s(max(state.next["users"] - 1, 1), r)
        {budget, r} = Values.budget(r)

        {[
           "UPDATE projects SET archived = NOT archived, owner_id = #{owner}, " <>
             "budget = #{budget} WHERE id = #{id}"
         ], %{state | rand: r}}
    end
  end

  defp delete_rows(state, table, n) do
    case state.bags[table] do
      %{size: 0} ->
        insert_rows(state, table, 1)

      bag ->
        {ids, {bag, r}} =
          Enum.map_reduce(1..min(n, bag.size), {bag, state.rand}, fn _, {bag, r} ->
            {id, r} = random(bag, r)
            {id, {delete(bag, id), r}}
          end)

        statement = "DELETE FROM #{table} WHERE id IN (#{Enum.join(ids, ", ")})"
        {[statement], %{put_in(state.bags[table], bag) | rand: r}}
    end
  end

  defp tag?(state), do: Map.get(state, :tag, false)

  # a set of ids with a uniform random pick: index -> id, id -> index

  @doc "A set of `ids` with a uniform random pick (`bags` of the model)."
  @spec bag([integer()]) :: map()
  def bag(ids \\ []), do: Enum.reduce(ids, %{size: 0, at: %{}, index: %{}}, &put(&2, &1))

  defp put(%{index: index} = bag, id) when is_map_key(index, id), do: bag

  defp put(bag, id),
    do: %{
      size: bag.size + 1,
      at: Map.put(bag.at, bag.size, id),
      index: Map.put(bag.index, id, bag.size)
    }

  defp delete(bag, id) do
    {i, index} = Map.pop!(bag.index, id)
    last = bag.size - 1
    moved = Map.fetch!(bag.at, last)
    at = bag.at |> Map.put(i, moved) |> Map.delete(last)
    index = if moved == id, do: index, else: Map.put(index, moved, i)
    %{size: last, at: at, index: index}
  end

  defp random(bag, r) do
    {i, r} = :rand.uniform_s(bag.size, r)
    {Map.fetch!(bag.at, i - 1), r}
  end
end
