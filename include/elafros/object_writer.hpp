#pragma once
// Controllers' writes through the API's admission and kind hooks, as a client's would go (a
// Service written here mints its revision): what the source controller uses for the Services
// it runs and binds, and the EventTypes the ingress registers.

#include <boost/json/object.hpp>
#include <functional>
#include <string>

#include "elafros/result.hpp"

namespace elafros {

class ObjectWriter {
 public:
  enum class Mode {
    kCreateOnly,  // create it unless it exists (then leave it alone)
    kApply,       // create it, or update the stored one's spec, labels and annotations
    kRewrite,     // write the stored object again, so the hooks see it anew (a SinkBinding's)
  };
  virtual ~ObjectWriter() = default;
  // On the control thread; `done` there too.
  virtual void write(boost::json::object object, Mode mode,
                     std::function<void(Result<void>)> done) = 0;
  // Deletes it (marks it, when it has finalizers); a missing object is no error.
  virtual void remove(std::string group, std::string kind, std::string ns, std::string name,
                      std::function<void(Result<void>)> done) = 0;
};

}  // namespace elafros
