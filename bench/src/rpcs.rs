//! The three measured calls and the requests each one sends.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use outpost_bench::{
    load::{self, Plan, Stats},
    targets::{Client, PAGE_SIZE, SEEDED_SERVICES, Workload, create_service_request},
};
use outpost_proto::management::v1 as pb;

/// A row group of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// GetService, round-robin over the seeded services.
    Get,
    /// ListServices, one page per call, cycling through every page of the environment.
    List,
    /// CreateService, a new service per call.
    Create,
}

impl Rpc {
    /// Every measured call, in table order.
    pub const ALL: [Rpc; 3] = [Rpc::Get, Rpc::List, Rpc::Create];

    /// The row label.
    pub fn label(self) -> String {
        match self {
            Rpc::Get => "GetService".into(),
            Rpc::List => format!("ListServices ({PAGE_SIZE} of {SEEDED_SERVICES})"),
            Rpc::Create => "CreateService".into(),
        }
    }

    /// Measures this call against the server behind `client`.
    pub async fn measure(self, plan: Plan, client: &Client, workload: &Workload) -> Stats {
        let client = client.clone();
        // Shared so warm-up and measurement continue one sequence (CreateService ids must
        // stay unique).
        let next = Arc::new(AtomicUsize::new(0));
        match self {
            Rpc::Get => {
                let names = workload.service_names.clone();
                load::measure(plan, move |worker| {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request = client.request(pb::GetServiceRequest {
                        name: names[n % names.len()].clone(),
                    });
                    let mut stub = client.stub(worker);
                    async move { stub.get_service(request).await.map(drop) }
                })
                .await
            }
            Rpc::List => {
                let parent = workload.list_parent.clone();
                let pages = workload.list_pages.clone();
                load::measure(plan, move |worker| {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request = client.request(pb::ListServicesRequest {
                        parent: parent.clone(),
                        page_size: PAGE_SIZE,
                        page_token: pages[n % pages.len()].clone(),
                    });
                    let mut stub = client.stub(worker);
                    async move { stub.list_services(request).await.map(drop) }
                })
                .await
            }
            Rpc::Create => {
                let parent = workload.create_parent.clone();
                load::measure(plan, move |worker| {
                    let n = next.fetch_add(1, Ordering::Relaxed);
                    let request =
                        client.request(create_service_request(&parent, format!("bench-{n}")));
                    let mut stub = client.stub(worker);
                    async move { stub.create_service(request).await.map(drop) }
                })
                .await
            }
        }
    }
}
