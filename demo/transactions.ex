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
  """

  alias LsmIndex.Demo.{Psql, Schema}

  @seed_rows 100
  @words ~w(fix bug update review deploy write test plan design refactor migrate ship
            docs api login cache index query billing invoice report email search)
  @odd_titles [
    "O'Brien's follow-up",
    "naïve café résumé",
    "Fix: \"quoted\" title",
    "path C:\\temp\\x",
    "ΣΑΣ ελληνικά",
    "urgent: 100% done_now",
    "emoji 🚀 launch"
  ]

  @doc """
  One transaction's SQL for `model` (a map with `opts`, `rand`, `txns`, `next`: the next id
  per table, `bags`: the live ids per table; other keys are kept) and the model after it:
  ids and counters move as if it committed (psql stops on any error, and so does the demo).
  """
  @spec next(map()) :: {iodata(), map()}
  def next(state) do
    {statements, state} = statements(state)
    state = %{state | txns: state.txns + 1}
    %{"users" => u, "projects" => p, "todos" => t} = state.next

    progress =
      "UPDATE demo_progress SET txns = #{state.txns}, next_user = #{u}, " <>
        "next_project = #{p}, next_todo = #{t};"

    {["BEGIN;\n", Enum.map(statements, &[&1, ";\n"]), progress, "\nCOMMIT;\n"], state}
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
    {row, r} = row(table, id, state, r)
    {row, %{state | rand: r}}
  end

  defp row("users", id, _state, r) do
    {email, r} = email(id, r)
    {x, r} = :rand.uniform_s(100, r)
    {created, r} = timestamp(r)
    name = Enum.at(@words, rem(id, length(@words))) <> " #{id}"

    {[
       {"id", "#{id}"},
       {"email", email},
       {"name", Psql.literal(name)},
       {"active", bool(x <= 85)},
       {"created_at", created}
     ], r}
  end

  defp row("projects", id, state, r) do
    {owner, r} = :rand.uniform_s(max(state.next["users"] - 1, 1), r)
    {x, r} = :rand.uniform_s(100, r)
    {budget, r} = budget(r)
    {created, r} = timestamp(r)

    {[
       {"id", "#{id}"},
       {"owner_id", "#{owner}"},
       {"name", Psql.literal("Project #{id}")},
       {"archived", bool(x <= 10)},
       {"budget", budget},
       {"created_at", created}
     ], r}
  end

  defp row("todos", id, state, r) do
    {project, r} = :rand.uniform_s(max(state.next["projects"] - 1, 1), r)
    {user, r} = :rand.uniform_s(max(state.next["users"] - 1, 1), r)
    {title, r} = title(r)
    {status, r} = status(r)
    {priority, r} = :rand.uniform_s(5, r)
    {estimate, r} = estimate(r)
    {due, r} = due(r)
    {x, r} = :rand.uniform_s(10, r)
    external = if x == 1, do: "NULL", else: "gen_random_uuid()"

    {[
       {"id", "#{id}"},
       {"project_id", "#{project}"},
       {"user_id", "#{user}"},
       {"title", title},
       {"status", status},
       {"priority", "#{priority}"},
       {"done", bool(status == "'done'")},
       {"estimate", estimate},
       {"due_at", due},
       {"created_at", "now()"},
       {"external_id", external}
     ], r}
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
            {"UPDATE todos SET #{set} WHERE id = #{id}", r}
          end)

        {statements, %{state | rand: r}}
    end
  end

  defp todo_change(:status, _state, r) do
    {status, r} = status(r)
    {priority, r} = :rand.uniform_s(5, r)
    {"status = #{status}, done = #{bool(status == "'done'")}, priority = #{priority}", r}
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
    {title, r} = title(r)
    {"title = #{title}", r}
  end

  defp todo_change(:schedule, _state, r) do
    {due, r} = due(r)
    {estimate, r} = estimate(r)
    {"due_at = #{due}, estimate = #{estimate}", r}
  end

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
        {email, r} = email(id, r)

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
        {budget, r} = budget(r)

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

  # value generators: SQL literals

  defp email(id, r) do
    {x, r} = :rand.uniform_s(3, r)
    email = if x == 1, do: "User#{id}@Example.COM", else: "user#{id}@example.com"
    {Psql.literal(email), r}
  end

  defp title(r) do
    {x, r} = :rand.uniform_s(20, r)

    if x == 1 do
      {i, r} = :rand.uniform_s(length(@odd_titles), r)
      {Psql.literal(Enum.at(@odd_titles, i - 1)), r}
    else
      {words, r} =
        Enum.map_reduce(1..(2 + rem(x, 4)), r, fn _, r ->
          {i, r} = :rand.uniform_s(length(@words), r)
          {Enum.at(@words, i - 1), r}
        end)

      title = Enum.join(words, " ")
      title = if rem(x, 3) == 0, do: String.capitalize(title), else: title
      {Psql.literal(title), r}
    end
  end

  defp status(r) do
    {i, r} = :rand.uniform_s(length(Schema.statuses()), r)
    {"'#{Enum.at(Schema.statuses(), i - 1)}'", r}
  end

  defp estimate(r) do
    {x, r} = :rand.uniform_s(2000, r)

    cond do
      x <= 300 -> {"NULL", r}
      x <= 400 -> {"0", r}
      true -> {"#{div(x, 100)}.#{String.pad_leading("#{rem(x, 100)}", 2, "0")}", r}
    end
  end

  defp budget(r) do
    {x, r} = :rand.uniform_s(10_000_000, r)
    if x <= 1_000_000, do: {"NULL", r}, else: {"#{div(x, 100)}.#{rem(x, 100)}", r}
  end

  defp due(r) do
    {x, r} = :rand.uniform_s(10, r)

    if x == 1 do
      {"NULL", r}
    else
      timestamp(r)
    end
  end

  # a 2024 instant written with one of several UTC offsets
  defp timestamp(r) do
    {day, r} = :rand.uniform_s(366, r)
    {minute, r} = :rand.uniform_s(1440, r)
    {o, r} = :rand.uniform_s(4, r)
    date = Date.add(~D[2024-01-01], day - 1)
    time = Time.add(~T[00:00:00], (minute - 1) * 60)
    offset = Enum.at(["+00", "+05:30", "-08", "+02"], o - 1)
    {"'#{date} #{time}#{offset}'", r}
  end

  defp bool(true), do: "true"
  defp bool(false), do: "false"

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
