defmodule LsmIndex.Native do
  @moduledoc false
  # The NIF functions of native/lsm_index_nif; loaded from priv/native at module load.
  @on_load :load_nif

  def load_nif do
    path = :filename.join(:code.priv_dir(:lsm_index), ~c"native/lsm_index_nif")
    :erlang.load_nif(path, 0)
  end

  def index_new(_opts), do: err()
  def index_open(_path, _opts), do: err()

  def index_flush(_index), do: err()
  def index_backup(_index, _dest), do: err()
  def index_close(_index), do: err()
  def index_add(_index, _key, _handle), do: err()
  def index_remove(_index, _key, _handle), do: err()
  def index_add_many(_index, _pairs), do: err()
  def index_remove_many(_index, _pairs), do: err()
  def index_add_many_dirty(_index, _pairs), do: err()
  def index_remove_many_dirty(_index, _pairs), do: err()
  def index_wait_idle(_index), do: err()
  def index_subscribe(_index, _pid), do: err()
  def index_unsubscribe(_index, _pid), do: err()
  def index_lookup(_index, _key), do: err()
  def index_lookup_many(_index, _keys), do: err()
  def index_lookup_many_dirty(_index, _keys), do: err()
  def index_drop_handle(_index, _handle), do: err()
  def index_drop_handle_dirty(_index, _handle), do: err()
  def index_compact(_index), do: err()
  def index_size(_index), do: err()
  def index_stats(_index), do: err()
  def index_live_count, do: err()
  def index_defaults, do: err()
  def router_new(_columns, _opts), do: err()
  def router_open(_path, _columns, _opts, _sync), do: err()
  def router_flush(_router), do: err()
  def router_close(_router), do: err()
  def router_wait_idle(_router), do: err()
  def router_add_shape(_router, _id, _sql, _params), do: err()
  def router_add_shape_dirty(_router, _id, _sql, _params), do: err()
  def router_remove_shape(_router, _id), do: err()
  def router_remove_shape_dirty(_router, _id), do: err()
  def router_route(_router, _change), do: err()
  def router_route_many(_router, _changes), do: err()
  def router_route_dirty(_router, _change), do: err()
  def router_route_many_dirty(_router, _changes), do: err()
  def router_metrics(_router), do: err()
  def where_parse_small(_sql, _columns), do: err()
  def where_parse_dirty(_sql, _columns), do: err()
  def timing_enable(_on), do: err()
  def timing_report, do: err()

  defp err, do: :erlang.nif_error(:nif_not_loaded)
end
