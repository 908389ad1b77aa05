defmodule LsmIndex.Telemetry do
  @moduledoc """
  Bridges compaction reports to `:telemetry` when that application is loaded (no dependency:
  checked at runtime with `Code.ensure_loaded?/1`).

  Every index created by `LsmIndex.new/1` or `LsmIndex.open/2` while `:telemetry` is loaded
  subscribes this bridge, a process started on first use. For each background job it emits

      [:lsm_index, :compaction, :stop]

  with measurements `%{duration: native_time, keys_flushed: n, keys_written: n,
  bytes_written: n}` and the job report (see `LsmIndex.subscribe/2`) as metadata.
  """

  use GenServer

  @event [:lsm_index, :compaction, :stop]

  @doc "The event name emitted after each compaction job."
  @spec event() :: [atom()]
  def event, do: @event

  @doc """
  Subscribes the bridge to `index` if `:telemetry` is loaded; returns whether it did.
  """
  @spec attach(LsmIndex.t()) :: boolean()
  def attach(index) do
    if Code.ensure_loaded?(:telemetry) do
      :ok = LsmIndex.subscribe(index, bridge())
      true
    else
      false
    end
  end

  # The running bridge, started (unlinked: it outlives the caller) if needed.
  defp bridge do
    case GenServer.start(__MODULE__, nil, name: __MODULE__) do
      {:ok, pid} -> pid
      {:error, {:already_started, pid}} -> pid
    end
  end

  @impl true
  def init(nil), do: {:ok, nil}

  @impl true
  def handle_info({:lsm_index, :compaction_done, info}, state) do
    measurements = %{
      duration: System.convert_time_unit(info.duration_us, :microsecond, :native),
      keys_flushed: info.keys_flushed,
      keys_written: info.keys_written,
      bytes_written: info.bytes_written
    }

    # :telemetry may have been unloaded since the index attached
    if function_exported?(:telemetry, :execute, 3) do
      apply(:telemetry, :execute, [@event, measurements, info])
    end

    {:noreply, state}
  end

  def handle_info(_other, state), do: {:noreply, state}
end
