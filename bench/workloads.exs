defmodule LsmIndex.Bench.Workloads do
  @moduledoc """
  Shapes and changes shared by the `mix bench` sections: an app's `todos` table, six
  parameterised WHERE templates, and a seeded stream of WAL changes.

  **Table** `{"public", "todos"}`, 10 columns: `id`, `user_id`, `project_id` int8, `status`
  an enum (`open`, `late`, `done`, `archived`), `priority` int2, `due_at` timestamptz,
  `title` text, `estimate` numeric, `created_at` timestamptz, `done` bool.

  **Shapes** (`template_shapes/1`): N shapes over `users(N) = max(N div 24, 1)` users, so a
  change of a known user meets ~24 candidates at every N. Shape `i` belongs to user
  `rem(i, users)` and takes template `rem(div(i, users), 6)`; integer ids `0..N-1`:

    0. `user_id = $1`
    1. `user_id = $1 AND status <> 'done'`
    2. `user_id = $1 AND priority >= 3`
    3. `user_id = $1 AND due_at >= $2 AND due_at < $3` (a month: the user's, `rem(user, 12)`)
    4. `user_id = $1 AND lower(title) LIKE '%bug%'`
    5. `user_id = $1 AND estimate > 5.5`

  A user's shapes of one template are equal (clause and parameters): 4 per user and
  template, as issue 24's workload has them (six distinct residuals per key). Equal
  definitions are `6 * users` ids apart, so registration in id order does not meet them
  back to back.

  **Changes** (`changes/2`): 2,000 rows exist before the stream (ids 1..2,000, never
  routed); then a seeded stream (default 20,000 changes): 60% updates of a live row (one or
  two of `status`, `priority`, `due_at`, `title`, `estimate`, `done` change; `user_id`
  stays), 25% inserts of a new row, 15% deletes of a live row. A new row's user is unknown
  to every shape 1% of the time, else one of the users, uniformly. Values are PostgreSQL
  text; a fifth of the titles hold "bug" in some case. `transactions/1` groups the stream
  by 10. `inserts/3`: rows of the same kind, all of known users or all of unknown ones (the
  hit and miss rows of `bench/router_scale.exs`).
  """

  @table {"public", "todos"}
  @statuses ["open", "late", "done", "archived"]
  @columns [
    {"id", :int8},
    {"user_id", :int8},
    {"project_id", :int8},
    {"status", {:enum, @statuses}},
    {"priority", :int2},
    {"due_at", :timestamptz},
    {"title", :text},
    {"estimate", :numeric},
    {"created_at", :timestamptz},
    {"done", :bool}
  ]
  @templates {
    "user_id = $1",
    "user_id = $1 AND status <> 'done'",
    "user_id = $1 AND priority >= 3",
    "user_id = $1 AND due_at >= $2 AND due_at < $3",
    "user_id = $1 AND lower(title) LIKE '%bug%'",
    "user_id = $1 AND estimate > 5.5"
  }
  @per_user 24
  @txn 10
  @preexisting 2_000
  @unknown_share 0.01
  # far above every user, so no shape has it
  @unknown_base 1_000_000_000_000
  @seed {22, 3, 6}
  # ids of `inserts/3`'s rows start above this
  @inserts_base 1_000_000_000

  @doc "The table's name, as `LsmIndex.Filter` changes carry it."
  def table, do: @table

  @doc "The table's columns, `[{name, type}]`."
  def columns, do: @columns

  @doc "The six WHERE templates, in template order."
  def templates, do: Tuple.to_list(@templates)

  @doc "Changes per transaction in `transactions/1`."
  def txn_size, do: @txn

  @doc "How many users N shapes are spread over (~24 shapes each)."
  def users(n), do: max(div(n, @per_user), 1)

  @doc "`[{id, where_sql, params}]`: the N template shapes (see the moduledoc)."
  def template_shapes(n) do
    users = users(n)
    for i <- 0..(n - 1)//1, do: template_shape(i, users)
  end

  @doc "Shape `i` of a workload over `users` users: `{i, where_sql, params}`."
  def template_shape(i, users) do
    user = rem(i, users)
    template = rem(div(i, users), tuple_size(@templates))
    sql = elem(@templates, template)
    u = Integer.to_string(user)

    params =
      if template == 3 do
        month = rem(user, 12) + 1
        [u, month_start(2024, month), month_start(2024 + div(month, 12), rem(month, 12) + 1)]
      else
        [u]
      end

    {i, sql, params}
  end

  defp month_start(year, month),
    do: "#{year}-#{String.pad_leading(Integer.to_string(month), 2, "0")}-01 00:00:00+00"

  @doc "A `{id, where_sql, params}` as an `LsmIndex.Filter` shape: `{id, shape}`."
  def filter_shape({id, sql, params}),
    do: {id, %{table: @table, columns: @columns, where: sql, params: params}}

  @doc """
  The seeded stream of `count` changes (default 20,000) for N shapes, in `LsmIndex.Filter`'s
  form (`{:insert, table, row}`, `{:update, table, old, new}`, `{:delete, table, old}`).
  The same N and count give the same stream in every process (it seeds its own generator).
  """
  def changes(n, count \\ 20_000) do
    users = users(n)
    state = :rand.seed_s(:exsss, @seed)

    {rows, state} =
      Enum.map_reduce(1..@preexisting, state, fn id, st -> new_row(id, users, st) end)

    live = live(rows)

    {changes, _} =
      Enum.map_reduce(1..count, {live, @preexisting + 1, state}, fn _, {live, next_id, st} ->
        {r, st} = :rand.uniform_s(st)

        cond do
          r < 0.25 or live.count == 0 ->
            {row, st} = new_row(next_id, users, st)
            {{:insert, @table, row}, {put_row(live, row), next_id + 1, st}}

          r < 0.85 ->
            {old, st} = pick(live, st)
            {new, st} = updated(old, st)

            {{:update, @table, old, new},
             {%{live | rows: Map.put(live.rows, new["id"], new)}, next_id, st}}

          true ->
            {old, st} = pick(live, st)
            {{:delete, @table, old}, {delete_row(live, old), next_id, st}}
        end
      end)

    changes
  end

  @doc """
  `count` inserts of new rows (the stream's kind of row: 10 columns, ids from 1,000,000,000
  up, beyond the stream's), every one of a user some shape has (`:known`: ~24 candidates each,
  a user's shapes) or of a user none has (`:unknown`: no candidate). Seeded apart from
  `changes/2`: the same N, count and kind give the same rows in every process.
  """
  def inserts(n, count, kind) when kind in [:known, :unknown] do
    users = users(n)
    st = :rand.seed_s(:exsss, if(kind == :known, do: {24, 1, 1}, else: {24, 1, 2}))

    {rows, _} =
      Enum.map_reduce(1..count//1, st, fn i, st ->
        id = @inserts_base + i

        case kind do
          :known -> known_row(id, users, st)
          :unknown -> user_row(id, @unknown_base + id, st)
        end
      end)

    for row <- rows, do: {:insert, @table, row}
  end

  @doc "The stream in transactions of 10 changes."
  def transactions(changes), do: Enum.chunk_every(changes, @txn)

  @doc "A change in `LsmIndex.ShapeRouter`'s form (no table)."
  def router_change({:insert, _table, row}), do: {:insert, row}
  def router_change({:update, _table, old, new}), do: {:update, old, new}
  def router_change({:delete, _table, old}), do: {:delete, old}
  def router_change({:truncate, _table}), do: :truncate

  # -- rows --

  # live rows: by id, plus their ids in slots 0..count-1 (a random one in O(1); a delete
  # moves the last slot's id into the gap)
  defp live(rows),
    do: Enum.reduce(rows, %{count: 0, slots: %{}, pos: %{}, rows: %{}}, &put_row(&2, &1))

  defp put_row(live, row) do
    id = row["id"]

    %{
      count: live.count + 1,
      slots: Map.put(live.slots, live.count, id),
      pos: Map.put(live.pos, id, live.count),
      rows: Map.put(live.rows, id, row)
    }
  end

  defp delete_row(live, row) do
    id = row["id"]
    last = live.count - 1
    at = Map.fetch!(live.pos, id)
    moved = Map.fetch!(live.slots, last)

    %{
      count: last,
      slots: live.slots |> Map.put(at, moved) |> Map.delete(last),
      pos: live.pos |> Map.put(moved, at) |> Map.delete(id),
      rows: Map.delete(live.rows, id)
    }
  end

  defp pick(live, st) do
    {i, st} = :rand.uniform_s(live.count, st)
    {Map.fetch!(live.rows, Map.fetch!(live.slots, i - 1)), st}
  end

  defp new_row(id, users, st) do
    {r, st} = :rand.uniform_s(st)

    if r < @unknown_share,
      do: user_row(id, @unknown_base + id, st),
      else: known_row(id, users, st)
  end

  defp known_row(id, users, st) do
    {u, st} = :rand.uniform_s(users, st)
    user_row(id, u - 1, st)
  end

  defp user_row(id, user, st) do
    {project, st} = :rand.uniform_s(1_000, st)
    {created_day, st} = :rand.uniform_s(28, st)

    row = %{
      "id" => Integer.to_string(id),
      "user_id" => Integer.to_string(user),
      "project_id" => Integer.to_string(project),
      "created_at" => "2023-06-#{pad2(created_day)} 09:30:00+00"
    }

    Enum.reduce(["status", "priority", "due_at", "title", "estimate"], {row, st}, fn col,
                                                                                     {row, st} ->
      set(row, col, st)
    end)
  end

  # one or two of the mutable columns change
  defp updated(old, st) do
    mutable = ["status", "priority", "due_at", "title", "estimate", "done"]
    {k, st} = :rand.uniform_s(2, st)

    Enum.reduce(1..k, {old, st}, fn _, {row, st} ->
      {c, st} = :rand.uniform_s(length(mutable), st)
      set(row, Enum.at(mutable, c - 1), st)
    end)
  end

  defp set(row, "status", st) do
    {s, st} = :rand.uniform_s(length(@statuses), st)
    status = Enum.at(@statuses, s - 1)

    {row
     |> Map.put("status", status)
     |> Map.put("done", if(status == "done", do: "t", else: "f")), st}
  end

  defp set(row, "done", st) do
    {d, st} = :rand.uniform_s(2, st)
    {Map.put(row, "done", if(d == 1, do: "t", else: "f")), st}
  end

  defp set(row, "priority", st) do
    {p, st} = :rand.uniform_s(6, st)
    {Map.put(row, "priority", Integer.to_string(p - 1)), st}
  end

  defp set(row, "due_at", st) do
    {m, st} = :rand.uniform_s(12, st)
    {d, st} = :rand.uniform_s(28, st)
    {h, st} = :rand.uniform_s(24, st)
    {Map.put(row, "due_at", "2024-#{pad2(m)}-#{pad2(d)} #{pad2(h - 1)}:00:00+00"), st}
  end

  defp set(row, "title", st) do
    {verb, st} = :rand.uniform_s(4, st)
    {bug, st} = :rand.uniform_s(st)
    {noun, st} = :rand.uniform_s(4, st)
    {n, st} = :rand.uniform_s(10_000, st)

    noun =
      if bug < 0.2,
        do: Enum.at(["bug", "Bug", "BUG", "debug"], noun - 1),
        else: Enum.at(["page", "form", "query", "report"], noun - 1)

    verb = Enum.at(["Fix", "Add", "Check", "Move"], verb - 1)
    {Map.put(row, "title", "#{verb} #{noun} #{n}"), st}
  end

  defp set(row, "estimate", st) do
    {e, st} = :rand.uniform_s(200, st)
    {Map.put(row, "estimate", "#{div(e, 10)}.#{rem(e, 10)}"), st}
  end

  defp pad2(i), do: String.pad_leading(Integer.to_string(i), 2, "0")
end
