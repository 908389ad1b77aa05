defmodule LsmIndex.Options do
  @moduledoc false
  # The options of `LsmIndex.new/1` and `LsmIndex.open/2` (documented there), checked and
  # turned into the map the NIF reads; a bad option raises `ArgumentError` naming it.

  alias LsmIndex.Native

  @max_overlay 1_099_511_627_776

  @option_names [
    :lanes,
    :overlay_limit,
    :max_overlay_keys,
    :overload,
    :policy,
    :max_segments,
    :size_ratio,
    :compaction_threads,
    :layout,
    :prefilter,
    :verify,
    :sync,
    :count_handles
  ]

  @doc """
  The options the caller gave, validated, as the map the NIF reads: an absent option (or
  `nil` for `:max_overlay_keys`/`:size_ratio`) takes the core's default
  (`Native.index_defaults/0`), so no default is written here.
  """
  @spec native!(keyword()) :: map()
  def native!(opts) do
    unless Keyword.keyword?(opts),
      do: raise(ArgumentError, "options are a keyword list, got: #{inspect(opts)}")

    opts = Keyword.validate!(opts, @option_names)

    given =
      for name <- @option_names, Keyword.has_key?(opts, name), do: {name, option!(name, opts)}

    given |> Map.new() |> Map.reject(fn {_name, value} -> value == nil end)
  end

  # The NIF's value of option `name` (given), `nil` for "the default".
  defp option!(:lanes, opts), do: int_opt!(opts, :lanes, 1, 65_536)
  defp option!(:overlay_limit, opts), do: int_opt!(opts, :overlay_limit, 1, @max_overlay)
  defp option!(:max_segments, opts), do: int_opt!(opts, :max_segments, 1, 1_000)

  defp option!(:max_overlay_keys, opts) do
    if opts[:max_overlay_keys] != nil do
      overlay_limit = opts[:overlay_limit] || Native.index_defaults().overlay_limit
      int_opt!(opts, :max_overlay_keys, overlay_limit, @max_overlay)
    end
  end

  defp option!(:size_ratio, opts) do
    case opts[:size_ratio] do
      nil ->
        nil

      r when is_number(r) and r > 0 ->
        r / 1

      other ->
        raise ArgumentError, ":size_ratio must be a positive number, got: #{inspect(other)}"
    end
  end

  defp option!(:compaction_threads, opts) do
    case opts[:compaction_threads] do
      :shared -> :shared
      _ -> int_opt!(opts, :compaction_threads, 1, 256)
    end
  end

  defp option!(:overload, opts), do: one_of!(opts, :overload, [:wait, :error])
  defp option!(:policy, opts), do: one_of!(opts, :policy, [:triangular, :leveled])
  defp option!(:layout, opts), do: one_of!(opts, :layout, [:quotient, :ptr_hash, :boomphf])
  defp option!(:prefilter, opts), do: one_of!(opts, :prefilter, [true, false])
  defp option!(:verify, opts), do: one_of!(opts, :verify, [true, false])
  defp option!(:sync, opts), do: one_of!(opts, :sync, [:flush, :always, :none])
  defp option!(:count_handles, opts), do: one_of!(opts, :count_handles, [true, false])

  defp one_of!(opts, name, allowed) do
    value = opts[name]

    unless value in allowed do
      raise ArgumentError,
            "#{inspect(name)} must be one of #{Enum.map_join(allowed, ", ", &inspect/1)}, got: #{inspect(value)}"
    end

    value
  end

  defp int_opt!(opts, name, min, max) do
    case opts[name] do
      v when is_integer(v) and v >= min and v <= max ->
        v

      other ->
        raise ArgumentError,
              "#{inspect(name)} must be an integer in #{min}..#{max}, got: #{inspect(other)}"
    end
  end
end
