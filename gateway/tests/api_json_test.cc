// print_api_json against protobuf's own printer, over every message of the public API filled at
// random: the direct printer must write the same bytes or leave the message to protobuf.
#include <gtest/gtest.h>

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/dynamic_message.h>
#include <google/protobuf/empty.pb.h>
#include <google/protobuf/message.h>
#include <google/protobuf/timestamp.pb.h>

#include <memory>
#include <random>
#include <string>
#include <vector>

#include "trellis/common/proto_json.h"
#include "trellis/notifications/v1/notifications.pb.h"
#include "trellis/orders/v1/orders.pb.h"
#include "trellis/users/v1/users.pb.h"

namespace trellis {
namespace {

namespace pb = google::protobuf;

std::vector<const pb::Descriptor*> api_messages() {
  std::vector<const pb::Descriptor*> out;
  for (const auto* file :
       {users::v1::User::descriptor()->file(), orders::v1::Order::descriptor()->file(),
        notifications::v1::Notification::descriptor()->file()}) {
    for (int i = 0; i < file->message_type_count(); ++i) out.push_back(file->message_type(i));
  }
  return out;
}

class RandomFiller {
 public:
  explicit RandomFiller(uint64_t seed) : random_(seed) {}
  bool plain_only = true;

  void fill(pb::Message& message, int depth = 0) {
    const auto* descriptor = message.GetDescriptor();
    if (descriptor->full_name() == "google.protobuf.Timestamp") {
      auto& timestamp = static_cast<pb::Timestamp&>(message);
      timestamp.set_seconds(static_cast<int64_t>(random_() % 253402300800ULL));
      const int32_t nanos[] = {0, 123000000, 456789000, 123456789,
                               static_cast<int32_t>(random_() % 1000000000)};
      timestamp.set_nanos(nanos[random_() % 5]);
      return;
    }
    for (int i = 0; i < descriptor->field_count(); ++i) {
      const auto* field = descriptor->field(i);
      if (random_() % 4 == 0) continue;  // left at its default
      int values = field->is_repeated() ? static_cast<int>(random_() % 4) : 1;
      for (int k = 0; k < values; ++k) put(message, field, depth);
    }
  }

 private:
  std::string text() {
    static const std::string plain = "abcXYZ019 -_.:/@+,";
    static const std::vector<std::string> special = {"\"",
                                                     "\\",
                                                     "<",
                                                     ">",
                                                     "&",
                                                     "'",
                                                     "=",
                                                     "\n",
                                                     "\t",
                                                     "\x01",
                                                     "\x7f",
                                                     "\xC3\xA9",
                                                     "\xE2\x80\xA8",
                                                     "\xF0\x9F\x98\x80",
                                                     "%",
                                                     "#",
                                                     "!",
                                                     "?",
                                                     "*"};
    std::string out;
    for (int i = 0, n = static_cast<int>(random_() % 12); i < n; ++i) {
      if (!plain_only && random_() % 4 == 0) {
        out += special[random_() % special.size()];
      } else {
        out += plain[random_() % plain.size()];
      }
    }
    return out;
  }

  int64_t integer() {
    const int64_t edges[] = {0,         1,         -1,        INT32_MAX,
                             INT32_MIN, INT64_MAX, INT64_MIN, 9007199254740993};
    return random_() % 3 == 0 ? edges[random_() % 8] : static_cast<int64_t>(random_());
  }

  int enum_number(const pb::FieldDescriptor* field) {
    const auto* type = field->enum_type();
    if (!plain_only && random_() % 10 == 0) return 1000 + static_cast<int>(random_() % 10);
    return type->value(static_cast<int>(random_() % type->value_count()))->number();
  }

  // A random value for `f`: set when singular, appended when repeated.
  void put(pb::Message& m, const pb::FieldDescriptor* f, int depth) {
    const auto* r = m.GetReflection();
    bool add = f->is_repeated();
    using F = pb::FieldDescriptor;
    switch (f->cpp_type()) {
      case F::CPPTYPE_INT32: {
        auto v = static_cast<int32_t>(integer());
        add ? r->AddInt32(&m, f, v) : r->SetInt32(&m, f, v);
        break;
      }
      case F::CPPTYPE_UINT32: {
        auto v = static_cast<uint32_t>(integer());
        add ? r->AddUInt32(&m, f, v) : r->SetUInt32(&m, f, v);
        break;
      }
      case F::CPPTYPE_INT64: {
        auto v = integer();
        add ? r->AddInt64(&m, f, v) : r->SetInt64(&m, f, v);
        break;
      }
      case F::CPPTYPE_UINT64: {
        auto v = static_cast<uint64_t>(integer());
        add ? r->AddUInt64(&m, f, v) : r->SetUInt64(&m, f, v);
        break;
      }
      case F::CPPTYPE_BOOL: {
        bool v = random_() % 2 == 0;
        add ? r->AddBool(&m, f, v) : r->SetBool(&m, f, v);
        break;
      }
      case F::CPPTYPE_DOUBLE: {
        auto v = static_cast<double>(integer()) / 7;
        add ? r->AddDouble(&m, f, v) : r->SetDouble(&m, f, v);
        break;
      }
      case F::CPPTYPE_FLOAT: {
        auto v = static_cast<float>(integer()) / 7;
        add ? r->AddFloat(&m, f, v) : r->SetFloat(&m, f, v);
        break;
      }
      case F::CPPTYPE_ENUM: {
        int v = enum_number(f);
        add ? r->AddEnumValue(&m, f, v) : r->SetEnumValue(&m, f, v);
        break;
      }
      case F::CPPTYPE_STRING: {
        auto v = text();
        add ? r->AddString(&m, f, std::move(v)) : r->SetString(&m, f, std::move(v));
        break;
      }
      case F::CPPTYPE_MESSAGE:
        if (depth < 3) fill(add ? *r->AddMessage(&m, f) : *r->MutableMessage(&m, f), depth + 1);
        break;
    }
  }

  std::mt19937_64 random_;
};

TEST(ApiJson, SameBytesAsProtobufsPrinterForEveryApiMessage) {
  RandomFiller filler(3);
  for (const auto* type : api_messages()) {
    const auto* prototype = pb::MessageFactory::generated_factory()->GetPrototype(type);
    ASSERT_NE(prototype, nullptr) << type->full_name();
    int direct = 0;
    for (int round = 0; round < 400; ++round) {
      filler.plain_only = round % 2 == 0;
      std::unique_ptr<pb::Message> message(prototype->New());
      filler.fill(*message);
      std::string expected, actual, directly;
      ASSERT_TRUE(print_api_json_by_protobuf(*message, expected)) << message->DebugString();
      ASSERT_TRUE(print_api_json(*message, actual));
      ASSERT_EQ(actual, expected) << type->full_name() << " round " << round;
      if (print_api_json_directly(*message, directly)) {
        ++direct;
        ASSERT_EQ(directly, expected) << type->full_name() << " round " << round;
      }
    }
    bool has_presence_fields = false;
    for (int i = 0; i < type->field_count(); ++i) {
      has_presence_fields |= type->field(i)->containing_oneof() != nullptr;
    }
    // Every answer shape of the API (no optional fields) is printed directly when its text is
    // plain; request messages with optional fields go to protobuf.
    if (!has_presence_fields) {
      EXPECT_GE(direct, 100) << type->full_name();
    }
  }
}

// protobuf prints set Timestamps after every other field, in field-number order: shapes that
// declare them elsewhere must still come out as protobuf writes them.
TEST(ApiJson, TimestampsOutOfProtobufsOrderGoToProtobuf) {
  struct FieldSpec {
    const char* name;
    int number;
    bool timestamp;
    bool repeated;
  };
  const std::vector<std::vector<FieldSpec>> shapes = {
      {{"id", 1, false, false}, {"created_at", 2, true, false}, {"name", 3, false, false}},
      {{"id", 1, false, false}, {"updated_at", 3, true, false}, {"created_at", 2, true, false}},
      {{"id", 1, false, false}, {"created_at", 2, true, false}, {"tags", 3, false, true}},
  };
  pb::DescriptorPool pool(pb::DescriptorPool::generated_pool());
  pb::DynamicMessageFactory factory(&pool);
  factory.SetDelegateToGeneratedFactory(true);
  for (size_t shape = 0; shape < shapes.size(); ++shape) {
    pb::FileDescriptorProto file;
    file.set_name("api_json_test_" + std::to_string(shape) + ".proto");
    file.set_package("trellis.test" + std::to_string(shape));
    file.set_syntax("proto3");
    file.add_dependency("google/protobuf/timestamp.proto");
    auto* type = file.add_message_type();
    type->set_name("Shaped");
    for (const auto& spec : shapes[shape]) {
      auto* field = type->add_field();
      field->set_name(spec.name);
      field->set_number(spec.number);
      field->set_label(spec.repeated ? pb::FieldDescriptorProto::LABEL_REPEATED
                                     : pb::FieldDescriptorProto::LABEL_OPTIONAL);
      field->set_type(spec.timestamp ? pb::FieldDescriptorProto::TYPE_MESSAGE
                                     : pb::FieldDescriptorProto::TYPE_STRING);
      if (spec.timestamp) field->set_type_name(".google.protobuf.Timestamp");
    }
    const auto* built = pool.BuildFile(file);
    ASSERT_NE(built, nullptr);
    std::unique_ptr<pb::Message> message(factory.GetPrototype(built->message_type(0))->New());
    const auto* r = message->GetReflection();
    for (const auto& spec : shapes[shape]) {
      const auto* field = message->GetDescriptor()->FindFieldByName(spec.name);
      if (spec.timestamp) {
        auto* timestamp = r->MutableMessage(message.get(), field);
        timestamp->GetReflection()->SetInt64(timestamp, timestamp->GetDescriptor()->field(0),
                                             spec.number);
      } else if (spec.repeated) {
        r->AddString(message.get(), field, "t");
      } else {
        r->SetString(message.get(), field, "x");
      }
    }
    std::string expected, actual, directly;
    ASSERT_TRUE(print_api_json_by_protobuf(*message, expected));
    ASSERT_TRUE(print_api_json(*message, actual));
    EXPECT_EQ(actual, expected) << "shape " << shape;
    EXPECT_FALSE(print_api_json_directly(*message, directly))
        << "shape " << shape << ": " << directly << " vs " << expected;
  }
}

TEST(ApiJson, WellKnownTypesAtTheTopGoToProtobuf) {
  pb::Timestamp timestamp;
  timestamp.set_seconds(5);
  std::string json;
  ASSERT_TRUE(print_api_json(timestamp, json));
  EXPECT_EQ(json, "\"1970-01-01T00:00:05Z\"");
  pb::Empty empty;
  json.clear();
  ASSERT_TRUE(print_api_json_directly(empty, json));
  EXPECT_EQ(json, "{}");
}

TEST(ApiJson, AnOrderIsPrintedDirectly) {
  orders::v1::Order order;
  order.set_id("0b7f-1");
  order.set_status(orders::v1::Order::CONFIRMED);
  order.set_total_cents(3000);
  auto* item = order.add_items();
  item->set_sku("BOOK-1");
  item->set_quantity(2);
  order.mutable_created_at()->set_seconds(1795960048);
  order.mutable_created_at()->set_nanos(857570000);
  std::string json;
  ASSERT_TRUE(print_api_json_directly(order, json));
  EXPECT_EQ(json, R"({"id":"0b7f-1","user_id":"","status":"CONFIRMED","items":[{"sku":"BOOK-1",)"
                  R"("quantity":2,"unit_price_cents":"0"}],"total_cents":"3000","currency":"",)"
                  R"("created_at":"2026-11-29T13:47:28.857570Z"})");
}

}  // namespace
}  // namespace trellis
