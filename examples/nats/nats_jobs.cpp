// nats_jobs: README's "Beyond one machine" example. Workers on any machine take jobs from a
// JoinableQueue in NATS JetStream; the producer waits until every job is done, then shuts the
// queue down (the workers then end).
//   nats_jobs work [nats://host:4222]     (as many as you like, anywhere)
//   nats_jobs put  [nats://host:4222]
#include <cereal/types/string.hpp>  // Job has a std::string: cereal serialises it
#include <chrono>
#include <cstdio>
#include <shuttle/nats.hpp>
#include <string>

struct Job {
    int id;
    std::string text;
    template <class A>
    void serialize(A& a) {
        a(id, text);
    }
};

int main(int argc, char** argv) {
    auto nats = shuttle::nats::Connection::connect(
        {.servers = {argc > 2 ? argv[2] : "nats://127.0.0.1:4222"}});
    auto jobs = shuttle::nats::JoinableQueue<Job>::open_or_create(nats, "jobs", 1024);
    if (argc > 1 && std::string(argv[1]) == "put") {
        for (int i = 0; i < 5; ++i) jobs.put(Job{i, "job " + std::to_string(i)}).value();
        if (!jobs.join_for(std::chrono::seconds(60))) return 1;  // until every job is done
        jobs.shutdown();                                         // the workers' gets end
        return 0;
    }
    while (auto job = jobs.get()) {  // a worker: at-least-once, on any machine
        std::printf("%d: %s\n", job->id, job->text.c_str());
        std::fflush(stdout);
        jobs.task_done().value();  // acknowledged: never delivered again
    }
}
