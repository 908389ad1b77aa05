defmodule LsmIndex.DefaultsTest do
  # Defaults live in the Rust core (`Config::default()`); Elixir forwards only the options
  # a caller gives and documents the core's values.
  use ExUnit.Case, async: true

  alias LsmIndex.{Native, ShapeRouter}

  # The `* `:name` - …` items of the moduledoc's options list, by option name.
  defp documented_options do
    {:docs_v1, _, :elixir, _, %{"en" => doc}, _, _} = Code.fetch_docs(LsmIndex)
    [_, options | _] = String.split(doc, ["## Options", "## Scheduling"])

    for item <- String.split(options, "\n  * `:", trim: true),
        [name, text] <- [String.split(item, "` - ", parts: 2)],
        into: %{},
        do: {String.to_atom(name), String.replace(text, ~r/\s+/, " ")}
  end

  describe "Native.index_defaults/0" do
    test "the moduledoc lists every option with the core's default" do
      documented = documented_options()
      defaults = Native.index_defaults()
      assert Map.keys(documented) |> Enum.sort() == Map.keys(defaults) |> Enum.sort()

      for {name, value} <- defaults do
        expected =
          case {name, value} do
            {:max_overlay_keys, nil} ->
              "(default `4 * overlay_limit`)"

            {:size_ratio, per_policy} when is_list(per_policy) ->
              "(default " <>
                Enum.map_join(per_policy, ", ", fn {p, r} -> "`#{r}` #{p}" end) <> ")"

            _ ->
              "(default `#{inspect(value)}`)"
          end

        assert documented[name] =~ expected, "#{inspect(name)}: expected #{expected}"
      end
    end
  end

  describe "options!/1" do
    test "forwards only the options given (nil for a derived default is absent)" do
      assert LsmIndex.options!([]) == %{}
      assert LsmIndex.options!(lanes: 4, prefilter: false) == %{lanes: 4, prefilter: false}
      assert LsmIndex.options!(size_ratio: nil, max_overlay_keys: nil) == %{}

      assert LsmIndex.options!(size_ratio: 2, compaction_threads: :shared) ==
               %{size_ratio: 2.0, compaction_threads: :shared}
    end

    test ":max_overlay_keys is checked against the default :overlay_limit when absent" do
      limit = Native.index_defaults().overlay_limit
      assert %{max_overlay_keys: ^limit} = LsmIndex.options!(max_overlay_keys: limit)

      assert_raise ArgumentError, ~r/:max_overlay_keys/, fn ->
        LsmIndex.options!(max_overlay_keys: limit - 1)
      end
    end

    test "a value the Elixir side should have refused raises ArgumentError in the NIF" do
      assert_raise ArgumentError, fn -> Native.index_new(%{policy: :tiered}) end
      assert_raise ArgumentError, fn -> Native.index_new(%{lanes: "4"}) end
      assert_raise ArgumentError, fn -> Native.index_new([]) end
    end
  end

  describe "new/1" do
    test "an index made without options has the core's defaults" do
      {:ok, index} = LsmIndex.new()
      defaults = Native.index_defaults()
      stats = LsmIndex.stats(index)
      assert stats.lanes == defaults.lanes
      assert defaults.compaction_threads == :shared
    end

    test "the policy's own size ratio applies when :size_ratio is absent" do
      own = Map.new(Native.index_defaults().size_ratio)

      # {policy, a ratio whose merges differ from the policy's own on this sequence}
      for {policy, other} <- [triangular: 1.0, leveled: 2.0] do
        default = shape_after_flushes(policy: policy)
        assert default == shape_after_flushes(policy: policy, size_ratio: own[policy])
        assert default != shape_after_flushes(policy: policy, size_ratio: other)
        {_flushes, merges, _written, _levels} = default
        assert merges > 0
      end
    end
  end

  # 16 flushes of 100 new keys into one lane, each waited for: which merges the policy
  # chose, as {flushes, merges, keys written, segments per level} (deterministic: every
  # flush sees the lane the previous one left)
  defp shape_after_flushes(opts) do
    index = LsmIndex.new!([lanes: 1, overlay_limit: 100, compaction_threads: 1] ++ opts)

    for round <- 0..15 do
      :ok = LsmIndex.add_many(index, for(i <- 1..100, do: {round * 100 + i, 1}))
      :ok = LsmIndex.wait_idle(index)
    end

    stats = LsmIndex.stats(index)
    assert stats.flushes == 16 and stats.keys_flushed == 1_600
    {stats.flushes, stats.merges, stats.keys_written, stats.segments_per_level}
  end

  describe "ShapeRouter.new/4" do
    test "index: options go through LsmIndex.options!/1" do
      cols = [{"id", :int8}]
      assert {:ok, r} = ShapeRouter.new("t", :todos, cols, index: [lanes: 2, policy: :leveled])
      :ok = ShapeRouter.add_shape(r, 1, "id = 1")
      assert ShapeRouter.route(r, {:insert, %{"id" => "1"}}) == [1]
      assert {:ok, _} = ShapeRouter.new("t", :todos, cols)

      assert_raise ArgumentError, ~r/:lanes/, fn ->
        ShapeRouter.new("t", :todos, cols, index: [lanes: 0])
      end
    end
  end
end
