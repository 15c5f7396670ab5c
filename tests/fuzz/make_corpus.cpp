// fuzz_make_corpus DIR: writes the seed inputs of every harness into DIR/<harness>/ with the
// library's own writers (IDX, weights, plans, PNG, JPEG, the packing service's answers), plus
// truncations of them. tests/fuzz/corpus/ was made this way (then grew by the inputs that the
// fuzzers found); scripts/fuzz.sh builds it with the harnesses.

#include <zlib.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <selmask/io/idx.hpp>
#include <selmask/io/png.hpp>
#include <selmask/io/state_file.hpp>
#include <selmask/nn/weights_file.hpp>
#include <selmask/ops/jpeg.hpp>
#include <selmask/train/resume.hpp>
#include <selmask/transfer/pack_service.hpp>
#include <selmask/transfer/plan_file.hpp>

namespace fs = std::filesystem;
using namespace selmask;
using namespace selmask::transfer;

namespace {

fs::path out_dir;

void put(const std::string& harness, const std::string& name, std::string_view bytes) {
  fs::create_directories(out_dir / harness);
  std::ofstream os(out_dir / harness / name, std::ios::binary | std::ios::trunc);
  os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

/// The input and two truncations of it (half, all but the last byte).
void put_cut(const std::string& harness, const std::string& name, std::string_view bytes) {
  put(harness, name, bytes);
  if (bytes.size() > 2) {
    put(harness, name + "-half", bytes.substr(0, bytes.size() / 2));
    put(harness, name + "-less1", bytes.substr(0, bytes.size() - 1));
  }
}

std::string file_text(const fs::path& p) { return io::read_file(p); }

std::vector<std::uint8_t> ramp(std::size_t n, unsigned mul = 7) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) {
    v[i] = static_cast<std::uint8_t>((i * mul) & 0xffU);
  }
  return v;
}

void idx_seeds(const fs::path& tmp) {
  io::write_idx(tmp / "a", shape{2, 2, 2}, ramp(8), io::idx_compression::none);
  put_cut("idx", "images-2x2x2", file_text(tmp / "a"));
  put("idx", "z-images-2x2x2", "z" + file_text(tmp / "a"));
  io::write_idx(tmp / "b", shape{2, 1, 3, 3}, ramp(18), io::idx_compression::none);
  put("idx", "images-2x1x3x3", file_text(tmp / "b"));
  io::write_idx(tmp / "c", shape{3, 4, 5}, ramp(60), io::idx_compression::gzip);
  put_cut("idx", "images-3x4x5.gz", file_text(tmp / "c"));
  io::write_idx(tmp / "d", shape{5}, ramp(5), io::idx_compression::gzip);
  put("idx", "labels-5.gz", file_text(tmp / "d"));
}

void weights_seeds(const fs::path& tmp) {
  nn::write_weights_file(tmp / "w", {{shape{2, 3}, {1, 2, 3, 4, 5, 6}}, {shape{3}, {0.5f, -1, 2}}});
  put_cut("weights", "two-tensors.weights", file_text(tmp / "w"));
  nn::write_weights_file(tmp / "m", {{shape{1, 1, 4, 4}, std::vector<float>(16, 1.0f)}});
  put("weights", "mask.masks", file_text(tmp / "m"));
  nn::write_weights_file(tmp / "e", {});
  put("weights", "empty.weights", file_text(tmp / "e"));
  nn::write_weights_file(tmp / "s", {{shape{}, {3.0f}}, {shape{0, 4}, {}}});
  put("weights", "scalar-and-empty.weights", file_text(tmp / "s"));
}

hard_mask any_mask(std::array<std::size_t, 4> dims, std::array<std::size_t, 4> block,
                   std::vector<float> keep) {
  hard_mask m;
  m.geometry = cell_geometry::make(dims, block);
  m.values = std::move(keep);
  return m;
}

void plan_seeds() {
  storage s;
  s.sample = shape{1, 4, 4};
  s.samples = 3;
  s.type = dtype::uint8;
  put_cut("plan", "any-2x2.json",
          plan_to_json(plan::from_masks({any_mask({1, 1, 4, 4}, {1, 1, 2, 2}, {1, 0, 0, 1})}, s)));
  storage t = s;
  t.sample = shape{2, 3, 5};
  t.type = dtype::float32;
  t.layout = storage_layout::tiled(2, 2);
  put("plan", "channel-tiled.json",
      plan_to_json(plan::from_masks({any_mask({1, 2, 3, 5}, {1, 1, 3, 5}, {0, 1})}, t)));
  storage v = s;
  v.versions = 3;
  v.layout = storage_layout::pixel_interleaved();
  v.sample = shape{2, 2, 2};
  hard_mask x;
  x.geometry = cell_geometry::make({3, 2, 2, 2}, {1, 2, 1, 1});
  x.values.assign(x.geometry.cells(), 0.0f);
  const std::size_t k_n = x.cells_per_version();
  for (std::size_t k = 0; k < k_n; ++k) {
    x.values[(k % 3) * k_n + k] = 1.0f;
  }
  put("plan", "xor-3-versions.json", plan_to_json(plan::from_masks({x}, v)));
}

/// TIFF LZW of `in` with literal codes only (what the decoder must take too), MSB first.
std::string lzw_literals(std::span<const std::uint8_t> in) {
  std::string out;
  std::uint32_t acc = 0;
  int bits = 0;
  std::size_t width = 9, next = 258;
  bool first = true;
  auto code = [&](unsigned c) {
    acc = (acc << width) | c;
    bits += static_cast<int>(width);
    while (bits >= 8) {
      out.push_back(static_cast<char>((acc >> (bits - 8)) & 0xffU));
      bits -= 8;
    }
  };
  auto step = [&](unsigned c, bool adds) {
    code(c);
    if (adds) {
      ++next;
    }
    if (next + 1 >= (std::size_t{1} << width) && width < 12) {
      ++width;
    }
  };
  step(256, false);
  for (std::uint8_t b : in) {
    if (next + 2 >= 4096) {
      step(256, false);
      next = 258;
      width = 9;
      first = true;
    }
    step(b, !first);
    first = false;
  }
  code(257);
  if (bits > 0) {
    out.push_back(static_cast<char>((acc << (8 - bits)) & 0xffU));
  }
  return out;
}

std::string deflate(std::span<const std::uint8_t> in) {
  uLongf n = compressBound(static_cast<uLong>(in.size()));
  std::string out(n, '\0');
  compress2(reinterpret_cast<Bytef*>(out.data()), &n, in.data(), static_cast<uLong>(in.size()), 6);
  out.resize(n);
  return out;
}

void tile_seeds() {
  // config: byte 0 = dtype | codec << 3 | predictor << 5; byte 1 = shuffle | little << 1 |
  // pixel order << 2 | (bands − 1) << 3; bytes 2, 3 = tile height − 1, width − 1
  const auto cfg = [](unsigned type, unsigned codec, unsigned pred, unsigned flags, unsigned th,
                      unsigned tw) {
    return std::string{static_cast<char>(type | codec << 3 | pred << 5), static_cast<char>(flags),
                       static_cast<char>(th - 1), static_cast<char>(tw - 1)};
  };
  const auto raw = ramp(8 * 8);
  put("tiles", "none-u8-8x8", cfg(0, 0, 1, 2, 8, 8) + std::string(raw.begin(), raw.end()));
  put("tiles", "deflate-u8-8x8-pred2", cfg(0, 1, 2, 2, 8, 8) + deflate(raw));
  put_cut("tiles", "lzw-u8-8x8", cfg(0, 2, 1, 2, 8, 8) + lzw_literals(raw));
  const auto raw16 = ramp(2 * 4 * 4 * 2, 13);
  put("tiles", "deflate-u16-2x4x4-shuffle-be", cfg(2, 1, 2, 1, 4, 4) + deflate(raw16));
  put("tiles", "lzw-u16-pixel-2bands", cfg(2, 2, 2, 2 | 4 | 8, 4, 2) + lzw_literals(raw16));
  const auto rawf = ramp(4 * 4 * 4, 5);
  put("tiles", "deflate-f32-4x4-pred3", cfg(6, 1, 3, 2, 4, 4) + deflate(rawf));
  const auto big = ramp(4 * 16 * 16 * 8, 3);
  put("tiles", "lzw-f64-4x16x16", cfg(7, 2, 1, 2 | 24, 16, 16) + lzw_literals(big));
}

void tile_table_seeds() {
  std::string t;
  auto u8 = [&](unsigned v) { t.push_back(static_cast<char>(v)); };
  auto le = [&](std::uint64_t v, int n) {
    for (int i = 0; i < n; ++i) {
      t.push_back(static_cast<char>((v >> (8 * i)) & 0xffU));
    }
  };
  // 2 bands of 4×4 in 2×2 tiles of one band: 2 groups × 2 × 2 tiles of 10 bytes each
  for (unsigned e : {2U, 4U, 4U, 1U, 2U, 2U}) {
    u8(e);
  }
  u8(0);      // uint8, band-sequential
  le(100, 4); // file bytes
  for (unsigned g = 0; g < 2; ++g) {
    for (unsigned r = 0; r < 2; ++r) {
      for (unsigned c = 0; c < 2; ++c) {
        u8(g), u8(r), u8(c);
        le(8 + 10 * ((g * 2 + r) * 2 + c), 4);
        le(g == 1 && r == 1 && c == 1 ? 0 : 10, 2); // the last tile not stored
      }
    }
  }
  put("tile_table", "2-bands-2x2-tiles", t);
}

void png_seeds() {
  put_cut("png", "gray-5x3.png", io::encode_png(5, 3, 1, ramp(15)));
  put("png", "rgb-4x4.png", io::encode_png(4, 4, 3, ramp(48, 11)));
}

void jpeg_seeds() {
  put_cut("jpeg", "gray-16x16-q75.jpg", [] {
    const auto j = jpeg_encode_gray(ramp(256), 16, 16, 75);
    return std::string(j.begin(), j.end());
  }());
  const jpeg_block_stream s = jpeg_encode_gray_blocks(ramp(16 * 24, 3), 16, 24, 50);
  const auto file = jpeg_assemble_blocks(s.header, s.segments);
  put_cut("jpeg", "blocks-16x24-q50.jpg", std::string(file.begin(), file.end()));
}

void service_seeds(const fs::path& tmp) {
  const fs::path root = tmp / "root";
  fs::create_directories(root);
  const auto data = ramp(4096, 1);
  io::write_file_atomically(root / "r.bin", std::string(data.begin(), data.end()));
  const pack_service svc(root);
  // byteranges and http_response: the service's multipart and one-range answers
  const service_reply multi = svc.handle("GET", "/r.bin", "bytes=0-3,10-12,4000-4095", "");
  put_cut("byteranges", "three-parts", multi.content_type + "\n" + multi.body);
  const service_reply two = svc.handle("GET", "/r.bin", "bytes=0-0,2-2", "");
  put("byteranges", "two-parts", two.content_type + "\n" + two.body);
  put("byteranges", "content-range", "bytes 0-9/4096\n");
  put_cut("http_response", "multipart",
          "HTTP/1.1 206 Partial Content\r\nContent-Type: " + multi.content_type +
            "\r\nContent-Length: " + std::to_string(multi.body.size()) + "\r\n\r\n" + multi.body);
  const service_reply one = svc.handle("GET", "/r.bin", "bytes=100-149", "");
  put_cut("http_response", "one-range",
          "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 206 Partial Content\r\nContent-Range: " + one.content_range +
            "\r\nContent-Type: application/octet-stream\r\n\r\n" + one.body);
  put("http_response", "star-total", "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/*\r\n\r\nab");
  // pack_service: requests against the harness's root (d.bin, p.json)
  storage s;
  s.sample = shape{1, 4, 4};
  s.samples = 4;
  s.type = dtype::uint8;
  const std::string plan_json =
    plan_to_json(plan::from_masks({any_mask({1, 1, 4, 4}, {1, 1, 2, 2}, {0, 1, 1, 0})}, s));
  put("pack_service", "get-file", "GET\n/d.bin\n\n");
  put("pack_service", "get-ranges", "GET\n/d.bin\nbytes=0-3,10-,70-80\n");
  put("pack_service", "head-range", "HEAD\n/d.bin\nbytes=5-5\n");
  put("pack_service", "pack-plan-file", "GET\n/pack?file=d.bin&plan=p.json\n\n");
  put("pack_service", "pack-posted-plan", "POST\n/pack?file=d.bin\n\n" + plan_json);
  put("pack_service", "select",
      "POST\n/select?file=d.bin&plan=p.json&first=1&count=2\n\n" + std::string{'\x09', '\x06'});
  put("pack_service", "escaped-path", "GET\n/%64.bin\n\n");
}

void bitmap_seeds() {
  // two samples: all four cells (32 bytes of uint16), then cell 0 (8 bytes)
  std::string b{'\x02', '\x0f', '\x01'};
  const auto pay = ramp(40);
  put("bitmaps", "two-samples", b + std::string(pay.begin(), pay.end()));
}

} // namespace

void state_seeds() {
  io::state_file s;
  selmask::detail::run_record r;
  r.progress.epoch = 3;
  r.progress.batch = 2;
  front_point p;
  p.q = 0.25;
  p.val_accuracy = 0.8;
  p.epoch = 2;
  p.masks = {{1, 0, 0, 1}};
  p.mask_shapes = {shape{1, 1, 2, 2}};
  p.checkpoint = "checkpoints/front_005.weights";
  r.front = {p};
  r.final_point = p;
  r.notes = {"a note"};
  epoch_info e;
  e.epoch = 1;
  e.current = phase::exploration;
  r.history = {e, e};
  selmask::detail::put_record(s, r);
  s.put("fingerprint", std::string("lambda=0x1p-1\nseed=3\n"));
  io::record_writer w;
  w.put_shape(shape{2, 2}).put_array(std::span<const float>(std::vector<float>{1, 2, 3, 4}));
  s.put("pipeline.mask.0", std::move(w));
  put_cut("state", "trainer-and-mask.state", s.serialise());
  put("state", "empty.state", io::state_file{}.serialise());
}

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_corpus DIR\n");
    return 2;
  }
  out_dir = argv[1];
  const fs::path tmp = fs::temp_directory_path() / ("selmask-make-corpus-" + std::to_string(::getpid()));
  fs::create_directories(tmp);
  idx_seeds(tmp);
  weights_seeds(tmp);
  plan_seeds();
  tile_seeds();
  tile_table_seeds();
  png_seeds();
  jpeg_seeds();
  service_seeds(tmp);
  bitmap_seeds();
  state_seeds();
  fs::remove_all(tmp);
  std::printf("seeds written to %s\n", out_dir.c_str());
  return 0;
}
