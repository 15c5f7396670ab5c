// From a scene on a server to the bytes a learned channel mask needs: a synthetic multi-band scene
// (io/synthetic.hpp: parcels of a few land-cover classes, only a few bands carry the class signal)
// is written with GDAL as a tiled GeoTIFF — band-interleaved, DEFLATE with the horizontal
// predictor, header first — and, for comparison, as a Cloud-Optimized GeoTIFF (GDAL's COG driver:
// pixel-interleaved). A channel mask is learned on parcels of other draws of the same scene
// with the cost of each band measured from the file (its compressed bytes, transfer/tiles.hpp's
// band_costs), so that Q is the fraction of the compressed bytes the plan reads. Then nginx serves
// the files and the client
//  1. reads the tile table over HTTP through GDAL (/vsicurl/; the header reads are counted in
//     nginx's access log),
//  2. fetches only the tiles of the selected bands (selmask's HTTP client, byte ranges), decodes
//     them (transfer/tiles.hpp) and classifies every parcel of the scene;
// against downloading the whole file, and against GDAL reading every band over /vsicurl/. The
// network on all bands (after the warm-up) classifies the whole download for the full-data
// accuracy. Where HDF5 is found, the scene is also written as a chunked HDF5 dataset (chunks of one
// band × tile × tile, shuffle + deflate) and the same bands' chunks are fetched from nginx. Prints the table
// and writes scene_tiles.csv and summary.txt to --out.
//
//   scene_tiles [--quick] [--bands N] [--size N] [--tile N] [--parcel N] [--budget Q]
//               [--train N] [--noise X] [--seed N] [--out DIR]
//     defaults: 64 bands, a 1024×1024 scene, 256×256 tiles, 4×4-pixel parcels, noise 0.2, budget 0.15 of the
//     compressed bytes, 6000 training parcels; --quick: 16 bands, 256×256, 128×128 tiles, budget at least
//     0.3, a few seconds (as ctest runs it).
#include "../tests/nginx_server.hpp"

#include <selmask/io/atomic_file.hpp>
#include <selmask/io/csv.hpp>
#include <selmask/io/synthetic.hpp>
#include <selmask/nn/nn.hpp>
#include <selmask/selmask.hpp>
#include <selmask/train/budget.hpp>
#include <selmask/train/trainer.hpp>
#include <selmask/transfer/gdal.hpp>
#include <selmask/transfer/http.hpp>
#ifdef SELMASK_EXAMPLE_HDF5
#include <selmask/transfer/hdf5.hpp>
#endif

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "command_line.hpp"

namespace {

namespace io = selmask::io;
namespace tr = selmask::transfer;
using clock_type = std::chrono::steady_clock;

double seconds_since(clock_type::time_point t0) {
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

/// Values as the scene stores them: reflectance × 10000 as uint16 (and back), so that the network
/// trains on exactly the values it will read from the file.
float quantise(float v) {
  return static_cast<float>(std::clamp(std::lround(v * 10000.0f), 0L, 65535L)) / 10000.0f;
}

/// The stored uint16 numbers back to reflectance (the same division as `quantise`).
void from_stored(std::vector<float>& v) {
  for (float& x : v) {
    x /= 10000.0f;
  }
}

/// Per-band standardisation from the training parcels (dropped bands stay 0 afterwards: the fill).
struct band_stats {
  std::vector<double> mean, inv_std;
  band_stats(const io::dataset& d, std::size_t bands) : mean(bands, 0.0), inv_std(bands, 0.0) {
    const std::size_t per = d.sample.size() / bands;
    std::vector<double> sq(bands, 0.0);
    for (std::size_t k = 0; k < d.images.size(); ++k) {
      const std::size_t b = (k / per) % bands;
      mean[b] += d.images[k];
      sq[b] += static_cast<double>(d.images[k]) * d.images[k];
    }
    const double n = static_cast<double>(d.size() * per);
    for (std::size_t b = 0; b < bands; ++b) {
      mean[b] /= n;
      inv_std[b] = 1.0 / std::sqrt(std::max(1e-12, sq[b] / n - mean[b] * mean[b]));
    }
  }
  void apply(io::dataset& d, const std::vector<bool>* kept = nullptr) const {
    const std::size_t bands = mean.size(), per = d.sample.size() / bands;
    for (std::size_t k = 0; k < d.images.size(); ++k) {
      const std::size_t b = (k / per) % bands;
      d.images[k] =
        kept != nullptr && !(*kept)[b] ? 0.0f : static_cast<float>((d.images[k] - mean[b]) * inv_std[b]);
    }
  }
};

/// The parcels of a C×S×S scene (parcel k at grid row k / (S/p), column k % (S/p)) as a data set.
io::dataset parcels_of(const std::vector<float>& scene, std::size_t bands, std::size_t size, std::size_t p,
                       const std::vector<std::int32_t>& labels, std::size_t classes) {
  io::dataset d;
  d.sample = selmask::shape{bands, p, p};
  d.labels = labels;
  d.classes = classes;
  const std::size_t per_row = size / p;
  d.images.resize(labels.size() * bands * p * p);
  for (std::size_t k = 0; k < labels.size(); ++k) {
    const std::size_t y0 = (k / per_row) * p, x0 = (k % per_row) * p;
    for (std::size_t b = 0; b < bands; ++b) {
      for (std::size_t y = 0; y < p; ++y) {
        for (std::size_t x = 0; x < p; ++x) {
          d.images[((k * bands + b) * p + y) * p + x] = scene[(b * size + y0 + y) * size + x0 + x];
        }
      }
    }
  }
  return d;
}

/// Writes the scene (C×S×S floats, already quantised) as uint16 with GDAL's `driver`.
void write_scene(const std::filesystem::path& path, const char* driver, const std::vector<float>& scene,
                 std::size_t bands, std::size_t size, const std::vector<std::string>& options) {
  GDALAllRegister();
  GDALDatasetH mem = GDALCreate(GDALGetDriverByName("MEM"), "", static_cast<int>(size),
                                static_cast<int>(size), static_cast<int>(bands), GDT_UInt16, nullptr);
  if (mem == nullptr) {
    throw selmask::io_error("scene_tiles: GDAL cannot create the in-memory scene");
  }
  std::vector<float> band(size * size);
  for (std::size_t b = 0; b < bands; ++b) {
    for (std::size_t i = 0; i < size * size; ++i) {
      band[i] = std::round(scene[b * size * size + i] * 10000.0f);
    }
    if (GDALRasterIO(GDALGetRasterBand(mem, static_cast<int>(b + 1)), GF_Write, 0, 0, static_cast<int>(size),
                     static_cast<int>(size), band.data(), static_cast<int>(size), static_cast<int>(size),
                     GDT_Float32, 0, 0) != CE_None) {
      GDALClose(mem);
      throw selmask::io_error("scene_tiles: GDAL cannot write band " + std::to_string(b + 1));
    }
  }
  std::vector<char*> opts;
  for (const std::string& o : options) {
    opts.push_back(const_cast<char*>(o.c_str()));
  }
  opts.push_back(nullptr);
  const std::filesystem::path tmp = path.string() + ".part";
  GDALDatasetH out =
    GDALCreateCopy(GDALGetDriverByName(driver), tmp.c_str(), mem, FALSE, opts.data(), nullptr, nullptr);
  GDALClose(mem);
  if (out == nullptr) {
    throw selmask::io_error("scene_tiles: GDAL's " + std::string(driver) + " driver cannot write " +
                            path.string() + ": " + CPLGetLastErrorMsg());
  }
  GDALClose(out);
  std::filesystem::rename(tmp, path); // complete files only
}

#ifdef SELMASK_EXAMPLE_HDF5
/// Writes the scene (C×S×S, quantised) as a chunked HDF5 dataset "reflectance" of uint16, chunks
/// of one band × tile × tile, shuffle + deflate (level 6), written to a temporary file first.
void write_scene_hdf5(const std::filesystem::path& path, const std::vector<float>& scene, std::size_t bands,
                      std::size_t size, std::size_t tile) {
  std::vector<std::uint16_t> v(scene.size());
  for (std::size_t i = 0; i < scene.size(); ++i) {
    v[i] = static_cast<std::uint16_t>(std::lround(scene[i] * 10000.0f));
  }
  const std::filesystem::path tmp = path.string() + ".part";
  const hid_t file = H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  const hsize_t dims[3] = {bands, size, size}, chunk[3] = {1, tile, tile};
  const hid_t space = H5Screate_simple(3, dims, nullptr);
  const hid_t dcpl = H5Pcreate(H5P_DATASET_CREATE);
  H5Pset_chunk(dcpl, 3, chunk);
  H5Pset_shuffle(dcpl);
  H5Pset_deflate(dcpl, 6);
  const hid_t ds = H5Dcreate2(file, "reflectance", H5T_STD_U16LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
  const herr_t w = ds < 0 ? -1 : H5Dwrite(ds, H5T_NATIVE_UINT16, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data());
  if (ds >= 0) {
    H5Dclose(ds);
  }
  H5Pclose(dcpl);
  H5Sclose(space);
  const herr_t c = file < 0 ? -1 : H5Fclose(file);
  if (file < 0 || ds < 0 || w < 0 || c < 0) {
    std::filesystem::remove(tmp);
    throw selmask::io_error("scene_tiles: HDF5 cannot write " + path.string());
  }
  std::filesystem::rename(tmp, path);
}
#endif

/// Requests and body bytes in nginx's access log (the default "combined" format) after line `from`.
struct log_count {
  std::size_t requests = 0, body_bytes = 0, lines = 0;
};
log_count count_log(const std::filesystem::path& log, std::size_t from) {
  std::ifstream in(log);
  log_count c;
  std::string line;
  while (std::getline(in, line)) {
    if (c.lines++ < from) {
      continue;
    }
    // ... "GET /x HTTP/1.1" 206 12345 "-" "agent"
    const std::size_t q = line.find("\" ", line.find('"') + 1);
    if (q == std::string::npos) {
      continue;
    }
    std::istringstream rest(line.substr(q + 2));
    int status = 0;
    std::size_t bytes = 0;
    rest >> status >> bytes;
    ++c.requests;
    c.body_bytes += bytes;
  }
  return c;
}

/// Reads every band of the remote file with GDAL (/vsicurl/), as a user of GDAL alone would.
double gdal_read_all(const std::string& vsi, std::size_t bands, std::size_t size) {
  const auto t0 = clock_type::now();
  GDALDatasetH ds = GDALOpenEx(vsi.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY, nullptr, nullptr, nullptr);
  if (ds == nullptr) {
    throw selmask::io_error("scene_tiles: GDAL cannot open " + vsi);
  }
  std::vector<float> band(size * size);
  for (std::size_t b = 0; b < bands; ++b) {
    if (GDALRasterIO(GDALGetRasterBand(ds, static_cast<int>(b + 1)), GF_Read, 0, 0, static_cast<int>(size),
                     static_cast<int>(size), band.data(), static_cast<int>(size), static_cast<int>(size),
                     GDT_Float32, 0, 0) != CE_None) {
      GDALClose(ds);
      throw selmask::io_error("scene_tiles: GDAL cannot read band " + std::to_string(b + 1) + " of " + vsi);
    }
  }
  GDALClose(ds);
  return seconds_since(t0);
}

/// Saves the network's weights when the warm-up ends (the full-data network).
template <class Net>
struct save_after_warmup {
  Net& net;
  std::size_t warmup_epochs;
  std::filesystem::path path;
  void on_epoch_end(const selmask::epoch_info& e) {
    if (e.current == selmask::phase::warmup && e.epoch + 1 == warmup_epochs) {
      net.save(path);
    }
  }
};

} // namespace

int main(int argc, char** argv) {
  using B = selmask::cpu;
  namespace nn = selmask::nn;
  bool quick = false;
  std::size_t bands = 64, size = 1024, tile = 256, parcel = 4, n_train = 6000;
  double budget = 0.15;
  std::uint64_t seed = 0;
  io::remote_options scene_opt{};
  scene_opt.noise = 0.2f;
  std::filesystem::path out = "scene_tiles_out";
  example::command_line cl("scene_tiles");
  cl.flag("--quick", quick)
    .option("--bands", "N", bands)
    .option("--size", "N", size)
    .option("--tile", "N", tile)
    .option("--parcel", "N", parcel)
    .option("--budget", "Q", budget)
    .option("--train", "N", n_train)
    .option("--noise", "X", scene_opt.noise)
    .option("--seed", "N", seed)
    .option("--out", "DIR", out);
  if (!cl.parse(argc, argv)) {
    return 2;
  }
  try {
    if (quick) {
      bands = 16;
      size = 256;
      tile = 128;
      n_train = 800;
      budget = std::max(budget, 0.3);
    }
    if (size % parcel != 0 || tile % 16 != 0 || tile < 128) {
      throw selmask::value_error(
        "scene_tiles: --size must be a multiple of --parcel, and --tile a multiple of 16 "
        "of at least 128 (the COG driver's smallest tile)");
    }
    std::filesystem::create_directories(out);
    scene_opt.bands = bands;
    scene_opt.height = scene_opt.width = parcel;

    // ---- the scene and the parcels to learn from -------------------------------------------------
    const std::size_t per_row = size / parcel, n_scene = per_row * per_row;
    auto train = io::make_remote(n_train, scene_opt, 1);
    auto val = io::make_remote(std::max<std::size_t>(n_train / 4, 200), scene_opt, 2);
    auto scene_draw = io::make_remote(n_scene, scene_opt, 3);
    for (auto* d : {&train.data, &val.data, &scene_draw.data}) {
      std::transform(d->images.begin(), d->images.end(), d->images.begin(), quantise);
    }
    std::vector<float> scene(bands * size * size);
    for (std::size_t k = 0; k < n_scene; ++k) {
      const std::size_t y0 = (k / per_row) * parcel, x0 = (k % per_row) * parcel;
      for (std::size_t b = 0; b < bands; ++b) {
        for (std::size_t y = 0; y < parcel; ++y) {
          for (std::size_t x = 0; x < parcel; ++x) {
            scene[(b * size + y0 + y) * size + x0 + x] =
              scene_draw.data.images[((k * bands + b) * parcel + y) * parcel + x];
          }
        }
      }
    }
    const std::string ts = std::to_string(tile);
    const auto t_write = clock_type::now();
    write_scene(out / "scene_bands.tif", "GTiff", scene, bands, size,
                {"TILED=YES", "BLOCKXSIZE=" + ts, "BLOCKYSIZE=" + ts, "INTERLEAVE=BAND", "COMPRESS=DEFLATE",
                 "PREDICTOR=2", "COPY_SRC_OVERVIEWS=YES"});
    write_scene(out / "scene_cog.tif", "COG", scene, bands, size,
                {"BLOCKSIZE=" + ts, "COMPRESS=DEFLATE", "PREDICTOR=YES", "OVERVIEWS=NONE"});
    const double write_s = seconds_since(t_write);
    const tr::tiled_raster local = tr::read_geotiff((out / "scene_bands.tif").string());
    const tr::tiled_raster local_cog = tr::read_geotiff((out / "scene_cog.tif").string());
    const std::vector<float> costs = local.band_costs();
    std::printf("scene: %zu bands x %zu x %zu (uint16), %zu parcels of %zux%zu, written in %.1f s\n", bands,
                size, size, n_scene, parcel, parcel, write_s);
    std::printf("  %s: %llu bytes (%zu tiles, %llu bytes outside the tiles)\n", local.description.c_str(),
                static_cast<unsigned long long>(local.file_bytes), local.tiles.size(),
                static_cast<unsigned long long>(tr::header_bytes(local)));
    std::printf("  %s: %llu bytes\n", local_cog.description.c_str(),
                static_cast<unsigned long long>(local_cog.file_bytes));
    std::printf("  measured band costs (compressed bytes / mean): %.3f .. %.3f\n",
                static_cast<double>(*std::min_element(costs.begin(), costs.end())),
                static_cast<double>(*std::max_element(costs.begin(), costs.end())));

    // ---- learn the channel mask -------------------------------------------------------------------
    const band_stats stats(train.data, bands);
    stats.apply(train.data);
    stats.apply(val.data);
    io::dataset test = parcels_of(scene, bands, size, parcel, scene_draw.data.labels, scene_opt.classes);
    stats.apply(test);
    // the scene's parcels from decoded tile values (the stored numbers), standardised; the bands
    // not in `keep` (nullptr: every band) are the fill, 0
    const auto scene_parcels = [&](std::vector<float>& values, const std::vector<bool>* keep) {
      from_stored(values);
      io::dataset d = parcels_of(values, bands, size, parcel, scene_draw.data.labels, scene_opt.classes);
      stats.apply(d, keep);
      return d;
    };

    using mask = selmask::any_mask<selmask::channel, selmask::st_sigmoid, selmask::table_cost>;
    using pipe = selmask::pipeline<mask>::on<B>;
    mask m;
    m.cost.values = costs;
    pipe masks(train.data.sample, 7 + seed, m);
    using network = nn::sequential<B, nn::flatten<B>, nn::dense<B>, nn::relu<B>, nn::dense<B>>;
    const nn::sequential_options net_opt{3 + seed, {3e-3f, 0.5f, 0.999f, 1e-8f, 1e-4f, true}};
    network net(net_opt, nn::flatten<B>{}, nn::dense<B>(train.data.sample.size(), 32), nn::relu<B>{},
                nn::dense<B>(32, scene_opt.classes));
    selmask::trainer_options opt;
    opt.warmup_epochs = quick ? 2 : 3;
    const std::size_t explore = quick ? 8 : 16, final_fixate = 3;
    opt.mask_epochs = explore + final_fixate;
    opt.final_fixation_epochs = final_fixate;
    opt.batch_size = 50;
    opt.mask_optimizer.lr = 0.05f;
    opt.keep_q = budget;
    opt.seed = seed;
    const std::size_t batches = (train.data.size() + opt.batch_size - 1) / opt.batch_size;
    const auto t_train = clock_type::now();
    const auto result = selmask::learn_selection_masks(
      masks, net, train.data, val.data, &test, opt,
      selmask::training_policies<>{}.with_lambda(
        selmask::budget_controller{.target_q = budget,
                                   .by_epoch = explore,
                                   .eta = 4.0f / static_cast<float>(batches),
                                   .per_batch = true}),
      selmask::progress_display{0}, save_after_warmup<network>{net, opt.warmup_epochs, out / "full.weights"});
    const double train_s = seconds_since(t_train);
    std::vector<float> hard;
    masks.for_each_mask([&](auto& mk) { hard = B::to_host(mk.hard()); });
    std::vector<bool> kept(bands);
    std::string kept_list;
    for (std::size_t b = 0; b < bands; ++b) {
      kept[b] = hard[b] == 1.0f;
      if (kept[b]) {
        kept_list += (kept_list.empty() ? "" : " ") + std::to_string(b);
      }
    }
    const auto [mem_acc, mem_q] = selmask::evaluate(masks, net, test);
    std::printf("mask learned in %.1f s: bands %s (Q %.4f of the compressed bytes); informative bands %zu\n",
                train_s, kept_list.c_str(), mem_q, train.informative.size());

    // ---- the scene over HTTP -----------------------------------------------------------------------
    const std::filesystem::path log = out / "access.log";
    std::filesystem::remove(log);
    selmask::testing::nginx_server server(out, "    access_log " + log.string() + ";\n");
    const std::string url = server.url("/scene_bands.tif");
    tr::http_client client;
    CPLSetConfigOption("GDAL_DISABLE_READDIR_ON_OPEN", "EMPTY_DIR");
    CPLSetConfigOption("VSI_CACHE", "FALSE");

    // 1. the tile table, through GDAL over HTTP (the header reads)
    std::size_t log_at = count_log(log, 0).lines;
    auto t0 = clock_type::now();
    const tr::tiled_raster remote = tr::read_geotiff("/vsicurl/" + url);
    const double header_s = seconds_since(t0);
    const log_count header = count_log(log, log_at);
    if (remote.tiles.size() != local.tiles.size() || remote.file_bytes != local.file_bytes) {
      throw selmask::io_error("scene_tiles: the tile table read over HTTP differs from the local one");
    }

    // 2. the selected bands' tiles
    const tr::tile_plan plan = tr::make_tile_plan(remote, kept);
    t0 = clock_type::now();
    tr::tile_values got = tr::fetch_tiles(client, url, remote, plan);
    const double fetch_s = seconds_since(t0);
    io::dataset fetched = scene_parcels(got.values, &kept);
    const double fetched_acc = selmask::evaluate(masks, net, fetched).first;

    // 3. the whole file, and every band through GDAL
    t0 = clock_type::now();
    const tr::fetched_payload whole = client.download_whole(url);
    std::vector<std::byte> all_tiles;
    const tr::tile_plan all_plan = tr::make_tile_plan(remote);
    for (const tr::byte_range& q : all_plan.ranges) {
      all_tiles.insert(all_tiles.end(), whole.payload.begin() + static_cast<std::ptrdiff_t>(q.offset),
                       whole.payload.begin() + static_cast<std::ptrdiff_t>(q.offset + q.length));
    }
    tr::tile_values full_values = tr::assemble_tiles(remote, all_plan, all_tiles);
    const double whole_s = seconds_since(t0);
    io::dataset full = scene_parcels(full_values.values, nullptr);
    network full_net(net_opt, nn::flatten<B>{}, nn::dense<B>(train.data.sample.size(), 32), nn::relu<B>{},
                     nn::dense<B>(32, scene_opt.classes));
    full_net.load(out / "full.weights");
    selmask::pipeline<selmask::any_mask<selmask::channel>>::on<B> keep_all(train.data.sample, 1);
    const double full_acc = selmask::evaluate(keep_all, full_net, full).first;

    log_at = count_log(log, 0).lines;
    const double gdal_s = gdal_read_all("/vsicurl/" + url, bands, size);
    const log_count gdal = count_log(log, log_at);

    // the same mask over the pixel-interleaved COG: every tile carries every band
    const tr::tile_plan cog_plan = tr::make_tile_plan(local_cog, kept);

#ifdef SELMASK_EXAMPLE_HDF5
    // the same scene as a chunked HDF5 dataset (chunks of one band): the same bands' chunks
    write_scene_hdf5(out / "scene.h5", scene, bands, size, tile);
    const tr::tiled_raster h5 = tr::read_hdf5_chunks((out / "scene.h5").string(), "reflectance");
    const tr::tile_plan h5_plan = tr::make_tile_plan(h5, kept);
    t0 = clock_type::now();
    tr::tile_values h5_got = tr::fetch_tiles(client, server.url("/scene.h5"), h5, h5_plan);
    const double h5_s = seconds_since(t0);
    io::dataset h5_parcels = scene_parcels(h5_got.values, &kept);
    const double h5_acc = selmask::evaluate(masks, net, h5_parcels).first;
    const std::uint64_t h5_file = h5.file_bytes;
#endif

    // ---- report -------------------------------------------------------------------------------------
    const double file_mb = static_cast<double>(remote.file_bytes) / 1e6;
    std::printf("\n%-44s %12s %9s %9s %9s\n", "read of the scene", "bytes", "x file", "seconds", "accuracy");
    auto row = [&](const char* what, double bytes, double s, double acc, double of_mb = 0.0) {
      char a[32] = "-";
      if (!std::isnan(acc)) {
        std::snprintf(a, sizeof a, "%.4f", acc);
      }
      std::printf("%-44s %12.0f %9.4f %9.3f %9s\n", what, bytes,
                  bytes / 1e6 / (of_mb > 0.0 ? of_mb : file_mb), s, a);
    };
    char what[128];
    std::snprintf(what, sizeof what, "header (GDAL /vsicurl/, %zu requests)", header.requests);
    row(what, static_cast<double>(header.body_bytes), header_s, NAN);
    std::snprintf(what, sizeof what, "selected tiles (%zu bands, %zu tiles, %zu req.)",
                  plan.tiles.size() / std::max<std::size_t>(1, remote.rows() * remote.cols()),
                  plan.tiles.size(), got.wire.requests);
    row(what, static_cast<double>(got.wire.total()), fetch_s, fetched_acc);
    row("whole file (one GET), all bands", static_cast<double>(whole.wire.total()), whole_s, full_acc);
    std::snprintf(what, sizeof what, "GDAL reads every band (/vsicurl/, %zu req.)", gdal.requests);
    row(what, static_cast<double>(gdal.body_bytes), gdal_s, NAN);
#ifdef SELMASK_EXAMPLE_HDF5
    std::snprintf(what, sizeof what, "HDF5: selected chunks (%zu chunks, %zu req.)", h5_plan.tiles.size(),
                  h5_got.wire.requests);
    row(what, static_cast<double>(h5_got.wire.total()), h5_s, h5_acc, static_cast<double>(h5_file) / 1e6);
    std::printf("  (the HDF5 file: %llu bytes, %s; x file: of the HDF5 file)\n",
                static_cast<unsigned long long>(h5_file), h5.description.c_str());
#endif
    std::printf("payload of the plan %llu bytes = %.4f of the tile bytes (Q of the mask %.4f); in memory the "
                "masked network scores %.4f on the scene's parcels\n",
                static_cast<unsigned long long>(plan.payload_bytes),
                static_cast<double>(plan.payload_bytes) / static_cast<double>(remote.tile_bytes()), mem_q,
                mem_acc);
    std::printf(
      "the same bands from the pixel-interleaved COG: %llu bytes (every tile holds all %zu bands)\n",
      static_cast<unsigned long long>(cog_plan.payload_bytes), bands);

    io::csv_table csv({"read", "bytes", "fraction_of_file", "seconds", "requests", "accuracy"});
    csv.add_row({std::string("header_gdal_vsicurl"), header.body_bytes,
                 static_cast<double>(header.body_bytes) / static_cast<double>(remote.file_bytes), header_s,
                 header.requests, std::string("")});
    csv.add_row({std::string("selected_tiles"), got.wire.total(),
                 static_cast<double>(got.wire.total()) / static_cast<double>(remote.file_bytes), fetch_s,
                 got.wire.requests, fetched_acc});
    csv.add_row({std::string("whole_file"), whole.wire.total(),
                 static_cast<double>(whole.wire.total()) / static_cast<double>(remote.file_bytes), whole_s,
                 whole.wire.requests, full_acc});
    csv.add_row({std::string("gdal_all_bands_vsicurl"), gdal.body_bytes,
                 static_cast<double>(gdal.body_bytes) / static_cast<double>(remote.file_bytes), gdal_s,
                 gdal.requests, std::string("")});
#ifdef SELMASK_EXAMPLE_HDF5
    csv.add_row({std::string("hdf5_selected_chunks"), h5_got.wire.total(),
                 static_cast<double>(h5_got.wire.total()) / static_cast<double>(h5_file), h5_s,
                 h5_got.wire.requests, h5_acc});
#endif
    csv.save(out / "scene_tiles.csv");
    std::ostringstream summary;
    summary << "scene " << bands << "x" << size << "x" << size << " uint16, tiles " << tile << ", "
            << local.description << ", " << remote.file_bytes << " bytes\n"
            << "mask: bands " << kept_list << " (Q " << mem_q << " of the compressed bytes, budget " << budget
            << ")\n"
            << "selected tiles: " << got.wire.total() << " bytes on the wire, accuracy " << fetched_acc
            << "\n"
            << "whole file: " << whole.wire.total() << " bytes on the wire, full-data accuracy " << full_acc
            << "\n";
    io::write_file_atomically(out / "summary.txt", summary.str());
#ifdef SELMASK_EXAMPLE_HDF5
    if (h5_acc != mem_acc) {
      std::fprintf(
        stderr, "scene_tiles: accuracy from the HDF5 chunks (%.6f) differs from the in-memory one (%.6f)\n",
        h5_acc, mem_acc);
      return 1;
    }
#endif
    if (fetched_acc != mem_acc) {
      std::fprintf(
        stderr, "scene_tiles: accuracy from the fetched tiles (%.6f) differs from the in-memory one (%.6f)\n",
        fetched_acc, mem_acc);
      return 1;
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "scene_tiles: %s\n", e.what());
    return 1;
  }
}
