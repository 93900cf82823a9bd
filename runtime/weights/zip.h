// The ZIP container of PyTorch checkpoints (torch.save since 1.6): entries
// stored without compression, ZIP64 records for large files. Every offset
// and size is checked against the file before anything is read.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "runtime/weights/tensor.h"

namespace stemkit::weights {

struct ZipEntry {
  const uint8_t* data = nullptr;  // inside the mapped file
  size_t size = 0;
};

class ZipArchive {
 public:
  // Throws stemkit::Error naming the file and what is wrong.
  explicit ZipArchive(std::shared_ptr<const MappedFile> file);
  const std::map<std::string, ZipEntry>& entries() const { return entries_; }
  const ZipEntry* find(const std::string& name) const;
  const std::shared_ptr<const MappedFile>& file() const { return file_; }

 private:
  std::shared_ptr<const MappedFile> file_;
  std::map<std::string, ZipEntry> entries_;
};

}  // namespace stemkit::weights
