-- The configuration timeline of each service.
SELECT service_id, configuration_ref, effective_from, provider_model, funding, senior_buy_in,
       primary_referral_routes, worker_profile, targeting, target_lsoas,
       formal_performance_management, interaction_model
FROM service_configurations
WHERE service_id IN ({services})
ORDER BY service_id, effective_from, configuration_ref
