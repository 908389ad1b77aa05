defmodule LsmIndex.Test.SubqueryExpected do
  @moduledoc """
  What a subquery router must answer for one change, computed from PostgreSQL's states
  before and after it (`LsmIndex.Test.SubqueryWorkload`), and the caller that acts on the
  answers (plan §6 (c)). Pure: no I/O.

  Answers (plan §2.3, §2.4), in `LsmIndex.ShapeRouter.route_many(r, changes, moves: true)`'s
  form, one `{ids, moves}` per change:

    * `ids`: the shapes of the change's table whose PostgreSQL result held the old row before
      the statement or holds the new row after it (a truncate: every shape of the table),
      sorted.
    * `moves`: `{shape_id, :move_in | :move_out, position, values}` for each top-level
      subquery position whose result crossed, by `position_moves/5`; sorted by shape id,
      move-outs first, then position. `values` is `:all` or a sorted list (nil first: the
      rows whose tested column is NULL; then by text, composites as lists), each value once.
      A nested position (a chain's inner level) has no moves of its own: its changes reach
      the shape as the head's derived view crossing. §2.3's truncate row applies to a
      truncate of the position's own table; a truncate deeper in a chain moves the derived
      view value by value. A position with a stale snapshot (`stale: %{diff, gen}`, see
      `LsmIndex.Test.SubqueryWorkload.stale/4`) moves by its own view (`view/3`), not by
      PostgreSQL's result.

  The caller (`caller_step/6`) holds each shape's row ids and changes them only as an answer
  says: a routed change by PostgreSQL's verdict on the new row (a delete or truncate drops),
  `:move_in values` adds the rows of the outer table whose tested columns are among the
  values and that match the WHERE now, `:move_in :all` adds every matching row, `:move_out
  values` re-checks the held rows whose tested columns are among the values (`:all`: every
  held row) and drops those that no longer match. The rows and "match now" are PostgreSQL's:
  the table's rows after the statement (as its `RETURNING` gave them) and the shape's ids in
  the state after it — what `SELECT id FROM t WHERE col = ANY($1) AND <where>` answers at
  that point. When the answers are right and sufficient, what it holds after every statement
  is PostgreSQL's result.
  """

  @typedoc "A subquery result: value => count; `nil` => rows with a NULL."
  @type multiset :: %{(String.t() | [String.t()] | nil) => pos_integer()}
  @typedoc "A move's values."
  @type values :: :all | [String.t() | [String.t()] | nil]
  @typedoc "One move."
  @type move :: {term(), :move_in | :move_out, non_neg_integer(), values()}

  @doc """
  The answer for `change` given PostgreSQL's `before` and `after` states and the shapes the
  router holds. `rules`: `:postgres` (the default: §2.3) or, for the checks that show the
  caller would notice a router getting it wrong, `:no_moves` (none at all) and
  `:no_null_rules` (NOT IN as plain non-membership, as a router ignoring NULLs and emptiness
  would answer); `moves/5` also takes `:no_stale` (stale snapshots ignored: every shape
  moved by PostgreSQL's result).
  """
  @spec answer([map()], tuple(), map(), map(), atom()) :: {[term()], [move()]}
  def answer(shapes, change, before, after_, rules \\ :postgres),
    do: {ids(shapes, change, before, after_), moves(shapes, change, before, after_, rules)}

  @doc "The shapes `change` must be routed to (sorted)."
  @spec ids([map()], tuple(), map(), map()) :: [term()]
  def ids(shapes, change, before, after_) do
    table = elem(change, 1)

    shapes
    |> Enum.filter(&(&1.table == table and routed?(&1, change, before, after_)))
    |> Enum.map(& &1.id)
    |> Enum.sort()
  end

  defp routed?(_shape, {:truncate, _}, _before, _after), do: true
  defp routed?(shape, {:insert, _, new}, _before, after_), do: holds?(after_, shape, new)
  defp routed?(shape, {:delete, _, old}, before, _after), do: holds?(before, shape, old)

  defp routed?(shape, {:update, _, old, new}, before, after_),
    do: holds?(before, shape, old) or holds?(after_, shape, new)

  defp holds?(state, shape, rec),
    do: MapSet.member?(Map.fetch!(state.matches, shape.id), String.to_integer(rec["id"]))

  @doc "The moves of `change` (sorted as the router sorts them)."
  @spec moves([map()], tuple(), map(), map(), atom()) :: [move()]
  def moves(shapes, change, before, after_, rules \\ :postgres)
  def moves(_shapes, _change, _before, _after, :no_moves), do: []

  def moves(shapes, change, before, after_, rules) do
    for shape <- shapes,
        p <- shape.positions,
        p.parent == nil,
        b = view(p, before, rules),
        a = view(p, after_, rules),
        {kind, values} <- position_moves(p.polarity, b, a, truncated?(change, p), rules) do
      {shape.id, kind, p.position, values}
    end
    |> Enum.sort_by(fn {id, kind, position, _} -> {id, kind != :move_out, position} end)
  end

  @doc """
  The view position `p` of a shape reads in `state`: PostgreSQL's result, plus the diff of a
  stale snapshot while its table has not been truncated since the shape was added (plan
  §4.4: the shape's snapshot plus the stream since); the values counted above 0. `rules`
  `:no_stale`: PostgreSQL's result.
  """
  @spec view(map(), map(), atom()) :: multiset()
  def view(p, state, rules \\ :postgres) do
    result = Map.fetch!(state.views, p.view)

    case p do
      %{stale: %{diff: diff, gen: gen}} when rules != :no_stale ->
        if state.gens[p.table] == gen do
          Map.merge(result, diff, fn _v, n, d -> n + d end)
          |> Map.filter(fn {_v, n} -> n > 0 end)
        else
          result
        end

      _ ->
        result
    end
  end

  # Only a truncate of the subquery's own table is one for §2.3's truncate row; a truncate
  # deeper in a chain changes the derived view value by value.
  defp truncated?({:truncate, table}, p), do: table == p.table
  defp truncated?(_change, _p), do: false

  @doc """
  §2.3's table for one occurrence: its polarity (`:positive` | `:negative`), its result
  before and after (multisets), and whether the statement truncated the subquery's table.
  Returns `[{kind, values}]`, the move-out first.
  """
  @spec position_moves(:positive | :negative, multiset(), multiset(), boolean(), atom()) ::
          [{:move_in | :move_out, values()}]
  def position_moves(polarity, before, after_, truncated?, rules \\ :postgres)

  def position_moves(polarity, before, _after, true, _rules) do
    cond do
      before == %{} -> []
      polarity == :positive -> [move_out: :all]
      true -> [move_in: :all]
    end
  end

  def position_moves(:positive, before, after_, false, _rules) do
    {entered, left} = crossings(before, after_)
    listed(:move_out, left) ++ listed(:move_in, entered)
  end

  def position_moves(:negative, before, after_, false, :no_null_rules) do
    {entered, left} = crossings(before, after_)
    listed(:move_out, entered) ++ listed(:move_in, left)
  end

  def position_moves(:negative, before, after_, false, _rules) do
    null_before = Map.has_key?(before, nil)
    null_after = Map.has_key?(after_, nil)

    cond do
      not null_before and null_after ->
        [move_out: :all]

      null_before and not null_after ->
        [move_in: :all]

      null_before ->
        # a NULL before and after: `x NOT IN V` is never TRUE, whatever enters or leaves
        []

      true ->
        {entered, left} = crossings(before, after_)
        filled = if before == %{} and after_ != %{}, do: [nil], else: []
        emptied = if before != %{} and after_ == %{}, do: [nil], else: []
        listed(:move_out, filled ++ entered) ++ listed(:move_in, emptied ++ left)
    end
  end

  # the values (not NULL rows) whose count went 0 -> >= 1 and >= 1 -> 0
  defp crossings(before, after_) do
    entered = for {x, _} <- after_, x != nil, not Map.has_key?(before, x), do: x
    left = for {x, _} <- before, x != nil, not Map.has_key?(after_, x), do: x
    {entered, left}
  end

  defp listed(_kind, []), do: []
  defp listed(kind, values), do: [{kind, sort_values(values)}]

  @doc "Values as the router lists them: each once, nil first, then by text."
  @spec sort_values([term()]) :: [term()]
  def sort_values(values),
    do: values |> Enum.uniq() |> Enum.sort_by(&if(&1 == nil, do: {0, nil}, else: {1, &1}))

  ## The caller

  @doc """
  The caller's held row ids (`%{shape_id => MapSet}`) after acting on `answer` (`{ids,
  moves}`, the router's) for `change`; `after_` is PostgreSQL's state after the statement
  and `rows` its tables' rows then (`table => id => record`). Ids and positions the caller
  does not know are ignored (the answer's comparison reports them).
  """
  @spec caller_step(map(), %{term() => map()}, tuple(), {list(), list()}, map(), map()) :: map()
  def caller_step(held, shapes_by_id, change, {ids, moves}, after_, rows) do
    held =
      Enum.reduce(ids, held, fn id, held ->
        case held do
          %{^id => h} -> %{held | id => routed(h, change, Map.fetch!(after_.matches, id))}
          _ -> held
        end
      end)

    Enum.reduce(moves, held, fn {id, kind, position, values}, held ->
      with %{^id => h} <- held,
           shape = Map.fetch!(shapes_by_id, id),
           %{} = p <- Enum.find(shape.positions, &(&1.position == position)) do
        matches = Map.fetch!(after_.matches, id)
        %{held | id => moved(h, kind, values, p.columns, matches, rows[shape.table])}
      else
        _ -> held
      end
    end)
  end

  defp routed(_h, {:truncate, _}, _matches), do: MapSet.new()
  defp routed(h, {:delete, _, old}, _matches), do: MapSet.delete(h, int(old["id"]))
  defp routed(h, {:insert, _, new}, matches), do: verdict(h, int(new["id"]), matches)

  defp routed(h, {:update, _, old, new}, matches),
    do: h |> MapSet.delete(int(old["id"])) |> verdict(int(new["id"]), matches)

  defp verdict(h, id, matches),
    do: if(MapSet.member?(matches, id), do: MapSet.put(h, id), else: MapSet.delete(h, id))

  defp moved(h, :move_in, :all, _columns, matches, _rows), do: MapSet.union(h, matches)

  defp moved(h, :move_in, values, columns, matches, rows) do
    Enum.reduce(matches, h, fn id, h ->
      if tested(rows[id], columns) in values, do: MapSet.put(h, id), else: h
    end)
  end

  defp moved(h, :move_out, values, columns, matches, rows) do
    recheck =
      if values == :all,
        do: h,
        else: Enum.filter(h, &(rows[&1] != nil and tested(rows[&1], columns) in values))

    Enum.reduce(recheck, h, fn id, h ->
      if MapSet.member?(matches, id), do: h, else: MapSet.delete(h, id)
    end)
  end

  defp tested(rec, [column]), do: rec[column]
  defp tested(rec, columns), do: Enum.map(columns, &rec[&1])

  defp int(text), do: String.to_integer(text)
end
